"""The relay's position in the store's log, and its health, kept in PostgreSQL.

The position moves only after Kafka acknowledged every event up to it, so a relay that
dies resumes from it and, at worst, publishes its last unacknowledged batch again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import ConnectionPool

from events.store.migrating import create_if_allowed

CREATE = """
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    published_total bigint NOT NULL DEFAULT 0,
    errors_total bigint NOT NULL DEFAULT 0,
    events_per_s double precision NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'starting',
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class RelayStatus:
    """What ``backbone relay --status`` and ``/readyz`` report."""

    name: str
    position: int
    published_total: int
    errors_total: int
    events_per_s: float
    state: str
    last_error: str | None
    updated_at: datetime | None


class Checkpoint:
    """One relay's row in ``relay_checkpoints``."""

    def __init__(self, pool: ConnectionPool, name: str) -> None:
        self.pool = pool
        self.name = name
        with self.pool.connection() as conn:
            create_if_allowed(conn, CREATE)
            conn.execute(
                "INSERT INTO relay_checkpoints (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (name,),
            )

    def position(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT position FROM relay_checkpoints WHERE name = %s", (self.name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def advance(self, position: int, published: int, events_per_s: float) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE relay_checkpoints SET position = %s, "
                "published_total = published_total + %s, events_per_s = %s, "
                "state = 'running', last_error = NULL, updated_at = now() "
                "WHERE name = %s AND position <= %s",
                (position, published, events_per_s, self.name, position),
            )

    def report(self, state: str, error: str | None = None) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE relay_checkpoints SET state = %s, last_error = %s, "
                "errors_total = errors_total + %s, updated_at = now() WHERE name = %s",
                (state, error, 1 if error else 0, self.name),
            )

    def status(self) -> RelayStatus:
        return read_status(self.pool, self.name)


def read_status(pool: ConnectionPool, name: str) -> RelayStatus:
    """A relay's status, read only (no table is created): for status pages and waits."""
    with pool.connection() as conn:
        exists = conn.execute("SELECT to_regclass('relay_checkpoints')").fetchone()
        row = (
            conn.execute(
                "SELECT name, position, published_total, errors_total, events_per_s, state, "
                "last_error, updated_at FROM relay_checkpoints WHERE name = %s",
                (name,),
            ).fetchone()
            if exists and exists[0] is not None
            else None
        )
    if row is None:
        return RelayStatus(name, 0, 0, 0, 0.0, "never started", None, None)
    return RelayStatus(*row)
