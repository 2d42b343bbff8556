"""Bookkeeping every projection shares: Kafka offsets, per-key marks, applied position.

- ``projection_offsets``: the next Kafka offset per (projection, topic, partition),
  written in the same transaction as the read tables.
- ``projection_marks``: the highest store position applied per (projection, topic, key).
  Within a topic, Kafka delivers a key's events in store order, so an envelope at or below
  the mark is a duplicate (a relay retry or a redelivery) and is skipped.
- ``projection_erased``: patients erased in this projection. A patient's events travel on
  several topics, so one published before the erasure can arrive after it; it is dropped.
- ``projection_positions``: the highest store position applied (the consistency token),
  and counters for status.

Marks and positions live beside the projection's tables (a rebuild builds its own and
swaps them in); offsets stay in the live schema.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

STATE_DDL = """
CREATE TABLE IF NOT EXISTS projection_marks (
    projection text NOT NULL,
    topic text NOT NULL,
    key text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (projection, topic, key)
);
CREATE INDEX IF NOT EXISTS projection_marks_key ON projection_marks (key);
CREATE TABLE IF NOT EXISTS projection_erased (
    projection text NOT NULL,
    patient_id uuid NOT NULL,
    PRIMARY KEY (projection, patient_id)
);
CREATE TABLE IF NOT EXISTS projection_positions (
    projection text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    applied_total bigint NOT NULL DEFAULT 0,
    deadlettered_total bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

OFFSETS_DDL = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection text NOT NULL,
    topic text NOT NULL,
    partition int NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);
"""


def mark_of(cur: Cursor[Any], projection: str, topic: str, key: str) -> int | None:
    row = cur.execute(
        "SELECT position FROM projection_marks WHERE projection = %s AND topic = %s AND key = %s",
        (projection, topic, key),
    ).fetchone()
    return int(row[0]) if row else None


HALTS_DDL = """
CREATE TABLE IF NOT EXISTS projection_halts (
    projection text PRIMARY KEY,
    error text NOT NULL,
    halted_at timestamptz NOT NULL DEFAULT now()
)"""


def record_halt(cur: Cursor[Any], projection: str, error: str) -> None:
    """The projection stopped on an error of ours (``projection_halts``, read by status)."""
    cur.execute(
        "INSERT INTO projection_halts (projection, error) VALUES (%s, %s) "
        "ON CONFLICT (projection) DO UPDATE SET error = EXCLUDED.error, halted_at = now()",
        (projection, error),
    )


def clear_halt(cur: Cursor[Any], projection: str) -> None:
    """A (re)started runner: whatever halted it before is being retried."""
    cur.execute("DELETE FROM projection_halts WHERE projection = %s", (projection,))


def advance_position(
    cur: Cursor[Any], projection: str, position: int, applied: int, deadlettered: int
) -> None:
    cur.execute(
        "INSERT INTO projection_positions "
        "(projection, position, applied_total, deadlettered_total) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (projection) DO UPDATE SET "
        "position = GREATEST(projection_positions.position, EXCLUDED.position), "
        "applied_total = projection_positions.applied_total + EXCLUDED.applied_total, "
        "deadlettered_total = projection_positions.deadlettered_total + "
        "EXCLUDED.deadlettered_total, updated_at = now()",
        (projection, position, applied, deadlettered),
    )


def store_offset(
    cur: Cursor[Any], projection: str, topic: str, partition: int, next_offset: int
) -> None:
    cur.execute(
        "INSERT INTO projection_offsets (projection, topic, partition, next_offset) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (projection, topic, partition) "
        "DO UPDATE SET next_offset = EXCLUDED.next_offset",
        (projection, topic, partition, next_offset),
    )


def stored_offsets(cur: Cursor[Any], projection: str) -> dict[tuple[str, int], int]:
    rows = cur.execute(
        "SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = %s",
        (projection,),
    ).fetchall()
    return {(row[0], int(row[1])): int(row[2]) for row in rows}
