"""Running every projection in one process (a thread and a consumer group each) and its status."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from projections.engine.base import Projection
from projections.engine.database import create_tables
from projections.engine.deadletter import DeadLetter
from projections.engine.kafka_clients import kafka_connection
from projections.engine.keyclient import KeyClient
from projections.engine.offsets import TopicEnds
from projections.engine.runner import ProjectionRunner
from projections.engine.state import store_offset, stored_offsets
from projections.settings import ProjectionSettings


def run_projections(
    projections: tuple[Projection, ...],
    pool: ConnectionPool,
    settings: ProjectionSettings,
    stop: threading.Event,
    keys: KeyClient | None = None,
) -> None:
    """Run the runners until ``stop``; if one dies, stop the others and re-raise. The runners
    share one key client (``keys``, else this process's principal's), so one cache."""
    keys = keys or KeyClient.from_settings(settings)
    with pool.connection() as conn:
        create_tables(conn, settings.read_schema, projections)
    failures: list[BaseException] = []

    def run(runner: ProjectionRunner) -> None:
        try:
            runner.run(stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
            raise
        finally:
            runner.deadletter.close()

    threads = []
    for projection in projections:
        deadletter = DeadLetter(kafka_connection(settings), f"deadletter.{projection.name}")
        runner = ProjectionRunner(projection, pool, settings, deadletter, keys)
        thread = threading.Thread(target=run, args=(runner,), name=projection.name, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class ProjectionStatus:
    """One projection's progress as ``backbone project --status`` prints it."""

    name: str
    position: int
    applied_total: int
    deadlettered_total: int
    halted: str | None = None


def _rows(conn: Connection[Any], table: str, query: str) -> list[tuple[Any, ...]]:
    exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return conn.execute(query).fetchall() if exists and exists[0] is not None else []


def projection_statuses(
    pool: ConnectionPool, projections: tuple[Projection, ...]
) -> list[ProjectionStatus]:
    with pool.connection() as conn:
        rows = _rows(
            conn,
            "projection_positions",
            "SELECT projection, position, applied_total, deadlettered_total "
            "FROM projection_positions",
        )
        halts = dict(
            _rows(conn, "projection_halts", "SELECT projection, error FROM projection_halts")
        )
    by_name = {row[0]: row for row in rows}
    statuses = []
    for p in projections:
        _, position, applied, deadlettered = by_name.get(p.name, (p.name, 0, 0, 0))
        statuses.append(
            ProjectionStatus(
                p.name, int(position), int(applied), int(deadlettered), halts.get(p.name)
            )
        )
    return statuses


def start_at_end(
    pool: ConnectionPool,
    settings: ProjectionSettings,
    projections: tuple[Projection, ...],
    ends: TopicEnds | None = None,
) -> None:
    """Start a new read schema's projections at the topics' ends: they will see only what
    is published from now on (an isolated store's events, in tests and benchmarks)."""
    source = ends or TopicEnds(kafka_connection(settings))
    try:
        with pool.connection() as conn:
            create_tables(conn, settings.read_schema, projections)
            for projection in projections:
                found = source(settings.topic_names.names(projection.topics))
                for (topic, partition), offset in found.items():
                    store_offset(conn.cursor(), projection.name, topic, partition, offset)
    finally:
        if ends is None:
            source.close()


def consumer_lag(
    pool: ConnectionPool, ends: TopicEnds, projections: tuple[Projection, ...]
) -> dict[str, int]:
    """Messages each projection has still to consume: Kafka end offsets minus stored offsets
    (both under this deployment's topic names, those of ``ends``' connection)."""
    names = ends.kafka.topics
    found = ends({names.of(t) for p in projections for t in p.topics})
    lag: dict[str, int] = {}
    with pool.connection() as conn:
        for projection in projections:
            stored = stored_offsets(conn.cursor(), projection.name)
            consumed = names.names(projection.topics)
            lag[projection.name] = sum(
                max(end - stored.get(partition, 0), 0)
                for partition, end in found.items()
                if partition[0] in consumed
            )
    return lag
