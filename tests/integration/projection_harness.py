"""Running projections against an isolated store and read schema, and comparing with rebuilds."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.settings import StoreSettings
from projections.engine.base import Projection
from projections.engine.kafka_clients import kafka_connection
from projections.engine.offsets import end_offsets
from projections.engine.rebuild import build_shadow
from projections.engine.service import run_projections
from projections.engine.state import stored_offsets
from projections.registry import ALL
from projections.settings import ProjectionSettings


def isolated_settings(store_settings: StoreSettings) -> ProjectionSettings:
    tag = uuid.uuid4().hex[:10]
    return ProjectionSettings(
        read_schema=f"r{tag}",
        store_name=store_settings.store_name,
        # Under "projection.": the group prefix the consumer principals are granted.
        consumer_group_prefix=f"projection.test{tag}",
        projection_max_poll_records=100,
    )


@contextmanager
def running_projections(
    pool: ConnectionPool, settings: ProjectionSettings
) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_projections, args=(ALL, pool, settings, stop), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)


def caught_up(
    pool: ConnectionPool,
    settings: ProjectionSettings,
    timeout_s: float = 120,
    published: Callable[[], bool] | None = None,
) -> bool:
    """True once every projection's stored offsets reached the ends of its partitions, and
    (given ``published``) once the relay has published everything the store held: without
    it, offsets already at the topics' ends before the relay's first batch look caught up."""
    deadline, kafka = time.monotonic() + timeout_s, kafka_connection(settings)
    while time.monotonic() < deadline:
        if published is not None and not published():
            time.sleep(0.1)
            continue
        with pool.connection() as conn:
            done = all(
                stored_offsets(conn.cursor(), p.name).items()
                >= end_offsets(kafka, set(kafka.topics.names(p.topics))).items()
                for p in ALL
            )
        if done:
            return True
        time.sleep(0.5)
    return False


def table_differences(
    pool: ConnectionPool, store: ClinicalStore, projection: Projection, schema: str
) -> dict[str, Any]:
    """Rebuild ``projection`` from the store into a shadow schema and diff it with the live one."""
    shadow, *_ = build_shadow(pool, store, projection, schema)
    differences: dict[str, Any] = {}
    with pool.connection() as conn:
        for table in projection.tables:
            live = sql.Identifier(schema, table)
            rebuilt = sql.Identifier(shadow, table)
            only_live = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {}) d"
                ).format(live, rebuilt)
            ).fetchone()
            only_rebuilt = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {}) d"
                ).format(rebuilt, live)
            ).fetchone()
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(live)).fetchone()
            if (only_live and only_live[0]) or (only_rebuilt and only_rebuilt[0]):
                differences[table] = {"only_live": only_live, "only_rebuilt": only_rebuilt}
            differences.setdefault("_rows", {})[table] = rows[0] if rows else 0
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(shadow)))
    return differences
