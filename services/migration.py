"""``backbone migrate``: every table of one store and its read schema, made by the
migration role, then each service's role granted what it needs (``services/database_roles.py``).

Idempotent, and run by ``backbone up`` before the services start: they connect as their
own roles, which may not create tables. A read schema made by an earlier version (owned by
the migration role) is handed to the projections' role with its tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection, sql

from events.store.migrating import act_as_owner, schema_owner
from projections.engine.database import create_tables
from services.api.container import DEPARTMENT_TABLES
from services.bootstrap import Backbone, schema_lock
from services.database_roles import API, DEPARTMENTS, HL7, KEYS, PROJECTIONS, RELAY, ServiceRole
from services.fhir.export import jobs
from services.hl7.listener import open_ledger
from services.keyservice.grants import KeyGrants
from services.relay.checkpoint import Checkpoint
from services.status import relay_name

DML = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class Grant:
    """Privileges of a role on the tables of a schema whose names match the patterns
    (``{s}``: the store's name; ``LIKE`` wildcards)."""

    role: ServiceRole
    privileges: str
    tables: tuple[str, ...]
    read_schema: bool = False


# Lab routing records its escalations as events, like the API and the HL7 listener.
WRITERS = (API, HL7, DEPARTMENTS)
# The permanent record: INSERT-only (the trigger refuses UPDATE and DELETE for every role).
RECORD = ("{s}_events_by_patient", "{s}_events_chain")
WORKING = ("{s}_events_idempotency", "{s}_data_keys", "{s}_legal_holds")
DEPARTMENT_OWN = ("pharmacy_%", "routing_%", "inbox_%", "projection_%")

GRANTS: tuple[Grant, ...] = (
    *(Grant(role, "SELECT, INSERT, UPDATE", ("{s}_events",)) for role in WRITERS),
    *(Grant(role, "SELECT, INSERT", RECORD) for role in WRITERS),
    *(Grant(role, DML, WORKING) for role in WRITERS),
    *(
        Grant(role, "SELECT", ("relay_checkpoints", "{s}_key_fetches", "{s}_events_checkpoints"))
        for role in WRITERS
    ),
    *(Grant(role, DML, ("auth_%",)) for role in (API, HL7)),
    Grant(HL7, DML, ("{s}_hl7_%",)),
    Grant(RELAY, "SELECT", ("{s}_events", "{s}_events_by_patient", "{s}_events_chain")),
    Grant(RELAY, "SELECT", ("{s}_data_keys",)),
    Grant(RELAY, "SELECT, INSERT", ("{s}_events_checkpoints",)),
    Grant(RELAY, "SELECT, INSERT, UPDATE", ("relay_checkpoints",)),
    Grant(KEYS, "SELECT", (*RECORD, "{s}_events", "{s}_data_keys")),
    Grant(KEYS, "SELECT, INSERT", ("{s}_key_fetches",)),
    # The read schema belongs to the projections; the others read it, and write their own.
    *(Grant(role, "SELECT", ("%",), read_schema=True) for role in WRITERS),
    Grant(API, DML, ("fhir_export_jobs",), read_schema=True),
    Grant(DEPARTMENTS, DML, DEPARTMENT_OWN, read_schema=True),
)
READERS = (API, HL7, DEPARTMENTS)  # of the read schema, and of what a rebuild makes anew


@dataclass
class Migration:
    """What a run made and granted."""

    handed_over: list[str] = field(default_factory=list)
    granted: int = 0


def migrate(backbone: Backbone) -> Migration:
    """Make every table of the backbone's store and read schema, then grant the roles."""
    done = Migration()
    store = backbone.store  # the store's own tables, chain and INSERT-only triggers
    backbone.auth  # noqa: B018 - the login tables
    backbone.retention()
    backbone.verifier()  # the signed checkpoints' table
    with schema_lock(backbone.pool):
        Checkpoint(backbone.pool, relay_name(backbone.settings, backbone.store_settings))
        KeyGrants(store.payload_keys, backbone.pool, store.name).create_table()
    open_ledger(backbone)
    schema = backbone.projection_settings.read_schema
    with backbone.reads.connection() as conn:
        done.handed_over = hand_over(conn, schema)
        create_tables(conn, schema, DEPARTMENT_TABLES)
        with conn.transaction():
            act_as_owner(conn, schema)
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            jobs.create_table(conn)
    with backbone.pool.connection() as conn, conn.transaction():
        done.granted = grant(conn, store.name, schema)
    return done


def hand_over(conn: Connection[Any], schema: str) -> list[str]:
    """Give the read schema, and what is in it, to the projections' role (made if missing)."""
    role = sql.Identifier(PROJECTIONS.role)
    with conn.transaction():
        owner = schema_owner(conn, schema)
        if owner is None:
            conn.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), role)
            )
            return []
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
            "AND pg_get_userbyid(c.relowner) <> %s ORDER BY 1",
            (schema, PROJECTIONS.role),
        ).fetchall()
        if owner != PROJECTIONS.role:
            conn.execute(
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), role)
            )
        for (table,) in rows:
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(schema, table), role)
            )
    return [str(table) for (table,) in rows]


def grant(conn: Connection[Any], store_name: str, read_schema: str) -> int:
    """Grant each role its privileges on the tables that exist (run in one transaction)."""
    count = 0
    readers = sql.SQL(", ").join(sql.Identifier(r.role) for r in READERS)
    conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(read_schema), readers)
    )
    for entry in GRANTS:
        schema = read_schema if entry.read_schema else "public"
        patterns = [p.format(s=store_name) for p in entry.tables]
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s "
            "AND tablename LIKE ANY(%s) ORDER BY 1",
            (schema, patterns),
        ).fetchall()
        for (table,) in tables:
            conn.execute(
                sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(entry.privileges),
                    sql.Identifier(schema, table),
                    sql.Identifier(entry.role.role),
                )
            )
            count += 1
        if tables and "INSERT" in entry.privileges:
            conn.execute(
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(entry.role.role)
                )
            )
    _by_default(conn)
    return count


def _by_default(conn: Connection[Any]) -> None:
    """What the projections' role creates later (a rebuild's tables, a new read schema) is
    readable by the readers without another migration; rebuilds create shadow schemas."""
    projections = sql.Identifier(PROJECTIONS.role)
    readers = sql.SQL(", ").join(sql.Identifier(r.role) for r in READERS)
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT SELECT ON TABLES TO {}").format(
            projections, readers
        )
    )
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SCHEMAS TO {}").format(
            projections, readers
        )
    )
    conn.execute(
        sql.SQL(
            "DO $grant$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', "
            "current_database(), {}); END $grant$"
        ).format(sql.Literal(PROJECTIONS.role))
    )
