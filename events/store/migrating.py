"""Who runs DDL: the role that may create in a schema makes and alters its tables; the
services' own roles, which may not, find them made by ``backbone migrate`` and never try.

Every process used to create its tables at start. With a PostgreSQL role per service (see
``services/database_roles.py``) only the migration role (the database's owner) creates in
``public`` and only the read schema's owner (the projections' role) creates in the read
schema, so the same start-up code serves both: it asks first, and a service that may not
create skips the DDL (``CREATE TABLE IF NOT EXISTS`` itself needs the privilege).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql


def may_create(conn: Connection[Any], schema: str = "public") -> bool:
    """Whether the connected role may create objects in ``schema`` (False if it is missing)."""
    row = conn.execute(
        "SELECT to_regnamespace(%s) IS NOT NULL "
        "AND has_schema_privilege(current_user, %s, 'CREATE')",
        (schema, schema),
    ).fetchone()
    return bool(row and row[0])


def schema_owner(conn: Connection[Any], schema: str) -> str | None:
    """The role owning ``schema``, or None when it does not exist."""
    row = conn.execute(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    return str(row[0]) if row else None


def act_as_owner(conn: Connection[Any], schema: str) -> bool:
    """Inside a transaction: become the schema's owner for the rest of it when the connected
    role is a member of that role, so what it creates belongs to the owner (the migration
    role creating the projections' tables leaves them writable by the projections). True
    when DDL in ``schema`` may proceed."""
    owner = schema_owner(conn, schema)
    if owner is None:
        return False
    row = conn.execute(
        "SELECT current_user = %s OR pg_has_role(current_user, %s, 'MEMBER')", (owner, owner)
    ).fetchone()
    if not (row and row[0]):
        return may_create(conn, schema)
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
    return True


def create_if_allowed(
    conn: Connection[Any], *statements: str | sql.Composable, schema: str = "public"
) -> bool:
    """Run ``statements`` (idempotent DDL) when the role may create in ``schema``; True if
    they ran. Services on their own roles skip them: ``backbone migrate`` ran them."""
    if not may_create(conn, schema):
        return False
    for statement in statements:
        conn.execute(statement)  # type: ignore[arg-type]
    return True
