"""Rebuild: a projection rebuilt from the store vs a raw scan-and-batch-insert of the events.

The rebuild reads the store in position order, decrypts, upcasts, validates and applies
each event to shadow tables, then swaps them in. The baseline pages through the same events
table with plain SELECTs and batch-inserts one row per event into a scratch table.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from bench.measure import ratio
from bench.progress import Progress
from bench.stack import BenchStack
from projections.engine.rebuild import rebuild
from projections.registry import named

PROJECTION = "patient_chart"
PAGE = 1000


def raw_scan(stack: BenchStack) -> tuple[int, float]:
    """(events, seconds) for paging through the events table, batch-inserting a row each."""
    events = sql.Identifier(f"{stack.store_settings.store_name}_events")
    scratch = sql.Identifier(f"{stack.store_settings.store_name}_rawscan")
    with psycopg.connect(stack.store_settings.database_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (notification_id bigint PRIMARY KEY, bytes int)").format(
                scratch
            )
        )
        conn.commit()
        began, after, count = time.perf_counter(), 0, 0
        while True:
            with conn.transaction(), conn.cursor() as cur:
                rows = cur.execute(
                    sql.SQL(
                        "SELECT notification_id, originator_id, originator_version, topic, state "
                        "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
                    ).format(events),
                    (after, PAGE),
                ).fetchall()
                if not rows:
                    break
                cur.executemany(
                    sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(scratch),
                    [(r[0], len(r[4])) for r in rows],
                )
            after, count = rows[-1][0], count + len(rows)
        seconds = time.perf_counter() - began
        conn.execute(sql.SQL("DROP TABLE {}").format(scratch))
        conn.commit()
    return count, seconds


def run(stack: BenchStack, progress: Progress) -> dict[str, Any]:
    projection = named(PROJECTION)
    head = stack.head()
    task = progress.task("rebuild", head)
    report = rebuild(
        stack.reads,
        stack.store,
        projection,
        stack.projection_settings.read_schema,
        lambda n, _: progress.advance(task, n),
    )
    events, seconds = raw_scan(stack)
    raw_rate = events / seconds
    return {
        "events_per_s": round(report.events_per_s, 1),
        "raw_per_s": round(raw_rate, 1),
        "ratio": ratio(report.events_per_s, raw_rate),
        "projection": PROJECTION,
        "events": report.events,
        "seconds": round(report.seconds, 2),
    }
