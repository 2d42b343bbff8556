"""The permanent record is INSERT-only in PostgreSQL itself, not only by convention.

A row trigger refuses UPDATE and DELETE and a statement trigger refuses TRUNCATE on the
store's events, its patient index, its hash chain and its signed checkpoints, whoever asks,
the tables' owner included, unless the session has explicitly switched to the maintenance
role (``SET ROLE backbone_maintenance``): a NOLOGIN role that only the few
paths that legitimately rewrite history take on purpose (none in normal operation; the tamper
tests do, which is their point). Erasure destroys keys in another table, key rotation rewraps
them there, and a restore loads into an empty store: none of them needs the role.

The triggers are created with the tables (idempotently: existing ones are left alone, so a
restart takes no lock on a busy table) and the maintenance role gets the privileges it needs
on each table when the role exists (``backbone infra up`` creates it). The owner could still
drop or disable a trigger: that is DDL, a deliberate act, not an UPDATE slipped into a query;
separate roles per service (the owner used only for migrations) close that too.
"""

from __future__ import annotations

from psycopg.sql import SQL, Composed, Identifier, Literal

MAINTENANCE_ROLE = "backbone_maintenance"
ROW_TRIGGER = "insert_only_rows"
TRUNCATE_TRIGGER = "insert_only_truncate"

_GUARD_BODY = f"""
BEGIN
    IF current_user = '{MAINTENANCE_ROLE}' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('%s on %I.%I refused: the event store is INSERT-only',
                         TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
        HINT = 'corrections are new events; maintenance runs as SET ROLE {MAINTENANCE_ROLE}';
END
"""

_PROTECT = """
DO $insert_only$
DECLARE
    rel oid := (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = {schema} AND c.relname = {name});
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = {row_name}) THEN
        CREATE TRIGGER {row_trigger} BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {guard}();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = {truncate_name})
    THEN
        CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {guard}();
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_name}) AND NOT (
        has_table_privilege({role_name}, rel, 'SELECT')
        AND has_table_privilege({role_name}, rel, 'INSERT')
        AND has_table_privilege({role_name}, rel, 'UPDATE')
        AND has_table_privilege({role_name}, rel, 'DELETE')
        AND has_table_privilege({role_name}, rel, 'TRUNCATE')
    ) THEN
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {table} TO {role};
    END IF;
END
$insert_only$
"""


def guard_function(schema: str, events_table_name: str) -> Identifier:
    """The trigger function of one store (one per store, owned by the store's role)."""
    return Identifier(schema, f"{events_table_name}_insert_only")


def guard_statement(schema: str, events_table_name: str) -> Composed:
    """Creates (or updates) the store's trigger function."""
    return SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
        guard_function(schema, events_table_name), Literal(_GUARD_BODY)
    )


def protect_statement(schema: str, events_table_name: str, table_name: str) -> Composed:
    """Puts the guard on one table (after ``guard_statement``); a no-op once it is there."""
    return SQL(_PROTECT).format(
        schema=Literal(schema),
        name=Literal(table_name),
        table=Identifier(schema, table_name),
        row_name=Literal(ROW_TRIGGER),
        row_trigger=Identifier(ROW_TRIGGER),
        truncate_name=Literal(TRUNCATE_TRIGGER),
        truncate_trigger=Identifier(TRUNCATE_TRIGGER),
        guard=guard_function(schema, events_table_name),
        role_name=Literal(MAINTENANCE_ROLE),
        role=Identifier(MAINTENANCE_ROLE),
    )


def insert_only_statements(
    schema: str, events_table_name: str, table_names: list[str]
) -> list[Composed]:
    """The guard function, then the guard on each table."""
    return [guard_statement(schema, events_table_name)] + [
        protect_statement(schema, events_table_name, name) for name in table_names
    ]
