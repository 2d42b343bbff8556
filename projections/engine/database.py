"""Connections and DDL of the read side: one schema holds the live tables of every projection."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql
from psycopg_pool import ConnectionPool

from events.store.migrating import act_as_owner, schema_owner
from projections.engine.base import Projection
from projections.engine.state import HALTS_DDL, OFFSETS_DDL, STATE_DDL
from projections.registry import ALL
from projections.settings import ProjectionSettings

DDL_LOCK = 7_346_201  # serialises concurrent CREATE ... IF NOT EXISTS across runners


def read_pool(settings: ProjectionSettings, max_size: int = 8) -> ConnectionPool:
    """A pool whose connections resolve unqualified names in the read schema."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=max_size,
        kwargs={"options": f"-c search_path={settings.read_schema},public"},
        open=True,
    )
    pool.wait(timeout=30)
    return pool


def create_tables(
    conn: Connection[Any], schema: str, projections: tuple[Projection, ...] = ALL
) -> None:
    """Create the schema, the shared state tables and the projections' tables (idempotent),
    owned by the schema's owner. A role that may not create in the schema (the API's, the
    departments': their tables are made by ``backbone migrate``) changes nothing."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        if schema_owner(conn, schema) is None:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        if not act_as_owner(conn, schema):
            return
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        if not _exist(conn, schema, ("projection_offsets", "projection_marks")):
            conn.execute(OFFSETS_DDL)
            conn.execute(STATE_DDL)
        elif not _exist(conn, schema, ("projection_marks_key",)):
            # Read schemas made before the chart's position lookup had its index.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS projection_marks_key ON projection_marks (key)"
            )
        conn.execute(HALTS_DDL)  # after the fact in read schemas older than halting
        for projection in projections:
            # CREATE INDEX IF NOT EXISTS still locks the table: skip tables that exist, or a
            # starting process deadlocks with a running consumer's writes.
            if not _exist(conn, schema, projection.tables):
                conn.execute(projection.ddl)


def _exist(conn: Connection[Any], schema: str, tables: tuple[str, ...]) -> bool:
    return all(
        (row := conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone())
        and row[0] is not None
        for table in tables
    )
