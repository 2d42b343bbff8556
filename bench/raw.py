"""The raw baselines: plain psycopg and kafka-python doing the same I/O without the backbone.

The raw table has the event table's shape and keys; rows carry a payload of the measured
size; commits use the server's durability (``synchronous_commit`` as configured).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from bench.measure import Load, hammer

RAW_DDL = """
CREATE TABLE {table} (
    notification_id bigserial PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    UNIQUE (originator_id, originator_version)
)
"""
INSERT = (
    "INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)"
)
TOPIC = "events.domain.payloads.observations:VitalsRecorded"


@contextmanager
def raw_table(database_url: str) -> Iterator[str]:
    """A scratch table shaped like the events table; dropped on the way out."""
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(RAW_DDL).format(table=sql.Identifier(table)))
    try:
        yield table
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def single_inserts(database_url: str, table: str, writers: int, each: int, size: int) -> Load:
    """``writers`` connections each committing ``each`` one-row transactions."""
    statement = sql.SQL(INSERT).format(table=sql.Identifier(table))
    connections = [psycopg.connect(database_url, autocommit=True) for _ in range(writers)]
    try:

        def insert(worker: int, _: int) -> None:
            connections[worker].execute(statement, (uuid.uuid4(), TOPIC, os.urandom(size)))

        return hammer(writers, insert, each=each)
    finally:
        for conn in connections:
            conn.close()


def batch_inserts(database_url: str, table: str, rows: int, batch: int, size: int) -> Load:
    """``rows`` rows in transactions of ``batch`` rows, one writer; one operation per batch."""
    statement = sql.SQL(INSERT).format(table=sql.Identifier(table))
    with psycopg.connect(database_url) as conn:

        def insert(_: int, i: int) -> None:
            count = min(batch, rows - i * batch)
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    statement, [(uuid.uuid4(), TOPIC, os.urandom(size)) for _ in range(count)]
                )

        return hammer(1, insert, each=-(-rows // batch))
