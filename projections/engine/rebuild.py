"""Rebuilding a projection from the event store into shadow tables, then swapping them in.

The store, not Kafka, is read: Kafka's retention is finite. The rebuild fills a shadow
schema (same DDL, same handlers, ``search_path`` pointing at it) with the store's events up
to its head, then, holding the projection's advisory lock (so the live runner cannot
commit meanwhile), applies what arrived since, and in the same transaction swaps the
shadow tables in and replaces the projection's marks and position with the rebuilt ones.

The live runner keeps its Kafka offsets: every message it has not consumed yet is either
at or below the rebuilt marks of its (topic, key) — already in the rebuilt tables, so it
is skipped — or newer, so it is applied. No gap, no double apply. Given where Kafka's
partitions now start (``starts``), an offset below that start (messages retention deleted
before the runner applied them, which halts it) is moved up to it in the same transaction:
what was deleted is in the rebuilt tables, having come from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor, sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.domain.contract import event_types_on
from events.store.migrating import act_as_owner
from projections.engine.applying import apply_once, from_log, mark_key
from projections.engine.base import Projection
from projections.engine.marks import Marks
from projections.engine.offsets import Ends
from projections.engine.runner import projection_lock_id
from projections.engine.state import STATE_DDL, advance_position, store_offset, stored_offsets

BATCH = 1000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild did: how many store events it read and how fast."""

    projection: str
    events: int
    applied: int
    position: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def shadow_schema(schema: str, projection: Projection) -> str:
    return f"{schema}_rebuild_{projection.name}"


def _apply_from_store(
    cur: Cursor[Any],
    store: ClinicalStore,
    projection: Projection,
    marks: Marks,
    after: int,
    until: int | None,
    progress: Progress | None,
) -> tuple[int, int, int]:
    """Apply stored events after ``after`` up to ``until``; (last position, read, applied).

    Statements are pipelined (the handlers' upserts go out without waiting for each
    answer) and the marks are written once per page."""
    position, read, applied = after, 0, 0
    # The log skips, from the clear header, what this projection does not consume before
    # paying for decryption.
    consumed = event_types_on(projection.topics)
    while True:
        page = store.event_log.after(position, BATCH, types=consumed, until=until)
        if not page.read:
            return position, read, applied
        wanted = [from_log(logged) for logged in page.events]
        marks.load(
            cur,
            [mark_key(e.topic, e.envelope) for e in wanted],
            [e.envelope.patient_id for e in wanted if e.envelope.patient_id is not None],
        )
        with cur.connection.pipeline():
            for event in wanted:
                if apply_once(cur, projection, marks, event.topic, event.envelope, event.payload):
                    applied += 1
            marks.flush(cur)
            if wanted:
                advance_position(cur, projection.name, wanted[-1].envelope.position, 0, 0)
        position = page.last_position
        read += page.read
        if progress is not None:
            progress(page.read, position)


def _set_path(conn: Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))


def build_shadow(
    pool: ConnectionPool,
    store: ClinicalStore,
    projection: Projection,
    schema: str,
    progress: Progress | None = None,
) -> tuple[str, int, int, int]:
    """Fill a fresh shadow schema up to the store head; (shadow, position, read, applied)."""
    shadow = shadow_schema(schema, projection)
    with pool.connection() as conn, conn.transaction():
        act_as_owner(conn, schema)  # the shadow tables become the live schema's owner's
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(shadow)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(shadow)))
        _set_path(conn, shadow)
        conn.execute(STATE_DDL)
        conn.execute(projection.ddl)
    until = store.event_log.head()
    position, read, applied = 0, 0, 0
    marks = Marks(projection.name, empty=True)
    while position < until:
        with pool.connection() as conn, conn.transaction():
            _set_path(conn, shadow)
            step = min(position + 20 * BATCH, until)
            position_now, n, a = _apply_from_store(
                conn.cursor(), store, projection, marks, position, step, progress
            )
            read, applied = read + n, applied + a
            position = max(position_now, step)
    return shadow, position, read, applied


def swap_in(
    pool: ConnectionPool,
    store: ClinicalStore,
    projection: Projection,
    schema: str,
    shadow: str,
    after: int,
    starts: Ends | None = None,
) -> tuple[int, int, int]:
    """Catch up under the projection's lock and swap the shadow tables in, atomically."""
    name = projection.name
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (projection_lock_id(name),))
        _set_path(conn, shadow)
        position, read, applied = _apply_from_store(
            conn.cursor(), store, projection, Marks(projection.name), after, None, None
        )
        live, new = sql.Identifier(schema), sql.Identifier(shadow)
        for table in projection.tables:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(live, sql.Identifier(table)))
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(new, sql.Identifier(table), live)
            )
        for table in ("projection_marks", "projection_erased", "projection_positions"):
            conn.execute(
                sql.SQL("DELETE FROM {}.{} WHERE projection = %s").format(
                    live, sql.Identifier(table)
                ),
                (name,),
            )
            conn.execute(
                sql.SQL("INSERT INTO {}.{} SELECT * FROM {}.{} WHERE projection = %s").format(
                    live, sql.Identifier(table), new, sql.Identifier(table)
                ),
                (name,),
            )
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(new))
        _set_path(conn, schema)
        cur = conn.cursor()
        stored = stored_offsets(cur, name)
        for (topic, partition), start in (starts or {}).items():
            if stored.get((topic, partition), 0) < start:
                store_offset(cur, name, topic, partition, start)
    return position, read, applied


def rebuild(
    pool: ConnectionPool,
    store: ClinicalStore,
    projection: Projection,
    schema: str,
    progress: Progress | None = None,
    starts: Callable[[], Ends] | None = None,
) -> RebuildReport:
    """Rebuild one projection from the store and swap it in; its report. ``starts`` answers
    where Kafka's partitions start now (asked just before the swap)."""
    started = time.monotonic()
    shadow, position, read, applied = build_shadow(pool, store, projection, schema, progress)
    final, more, more_applied = swap_in(
        pool, store, projection, schema, shadow, position, starts() if starts else None
    )
    return RebuildReport(
        projection.name,
        read + more,
        applied + more_applied,
        max(position, final),
        time.monotonic() - started,
    )
