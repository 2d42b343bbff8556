"""A projection behind what Kafka still holds halts and says so; a rebuild is the remedy.

Retention deletes old messages; a runner whose stored offset is below the start of what
Kafka keeps would, with ``auto_offset_reset="earliest"``, silently skip what it never
applied. Here retention is forced with DeleteRecords on the real broker, on a topic of the
test's own (the chart projection pointed at it, run as the operator principal), so that the
shared topics keep their history for every other consumer."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable
from datetime import date
from functools import partial
from uuid import UUID

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.patients import RegisterPatient
from events.settings import StoreSettings
from events.store.published import published_envelope
from projections import patient_chart
from projections.chart import fetch_chart
from projections.engine.base import Projection
from projections.engine.database import create_tables, read_pool
from projections.engine.kafka_clients import kafka_connection
from projections.engine.offsets import end_offsets, start_offsets
from projections.engine.rebuild import rebuild
from projections.engine.runner import ProjectionHalted
from projections.engine.service import projection_statuses, run_projections, start_at_end
from projections.engine.state import stored_offsets
from projections.settings import ProjectionSettings
from services.local_stack.processes import wait_until
from tests.integration.projection_harness import isolated_settings
from tests.unit.conftest import ctx

pytestmark = pytest.mark.integration

CHART = patient_chart.PROJECTION


def register(store: ClinicalStore, family: str) -> UUID:
    mrn = f"RG-{uuid.uuid4().hex[:8]}"
    return store.register_patient(
        ctx(), RegisterPatient(mrn, family, ("Ada",), date(1970, 1, 1), "female")
    ).id


def run_for(
    projection: Projection,
    pool: ConnectionPool,
    settings: ProjectionSettings,
    until: Callable[[], bool],
    timeout_s: float,
) -> BaseException | None:
    """Run ``projection`` until ``until()`` or ``timeout_s``; what it raised, if anything."""
    stop, failures = threading.Event(), []

    def run() -> None:
        try:
            run_projections((projection,), pool, settings, stop)
        except BaseException as exc:  # reported to the test
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: bool(failures) or until(), timeout_s, 0.2)
    stop.set()
    thread.join(timeout=60)
    return failures[0] if failures else None


def test_a_projection_behind_retention_halts_naming_the_rebuild_which_then_lets_it_go_on(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    reads_settings = isolated_settings(store_settings).model_copy(
        update={"kafka_principal": "operator"}
    )
    kafka = kafka_connection(reads_settings)
    topic = f"test.retention.{uuid.uuid4().hex[:10]}"
    private = dataclasses.replace(CHART, topics=(topic,))
    wire = kafka.topics.of(topic)  # behind this session's prefix, as the runner reads it
    admin = KafkaAdminClient(**kafka.client_kwargs(), client_id="retention-test")
    producer = KafkaProducer(**kafka.client_kwargs(), acks="all")
    pool = read_pool(reads_settings)

    def publish(patient: UUID) -> None:
        for logged in pg_store.event_log.of_patient(patient):
            envelope = published_envelope(logged)  # in clear (envelope version 1)
            producer.send(wire, json.dumps(envelope).encode(), key=str(patient).encode())
        producer.flush()

    admin.create_topics([NewTopic(wire, 1, 1)])
    try:
        # Given a chart projection that has applied everything of its topic (nothing yet)
        start_at_end(pool, reads_settings, (private,))
        with pool.connection() as conn:
            create_tables(conn, reads_settings.read_schema)  # the chart reads them all
        # and a registration published since, which retention then deletes unapplied
        missed = register(pg_store, "Missedbyretention")
        publish(missed)
        ends = end_offsets(kafka, {wire})
        admin.delete_records({TopicPartition(t, p): end for (t, p), end in ends.items()})
        assert start_offsets(kafka, {wire}) == ends == {(wire, 0): 1}

        # When the projection runs, then it halts, says why and what to do, and skips nothing
        halted = run_for(private, pool, reads_settings, lambda: False, 60)
        assert isinstance(halted, ProjectionHalted), halted
        assert "retention deleted" in str(halted)
        assert "backbone rebuild patient_chart" in str(halted)
        with pool.connection() as conn:
            assert fetch_chart(conn, missed) is None
        status = next(s for s in projection_statuses(pool, (private,)) if s.name == CHART.name)
        assert status.halted is not None and "retention deleted" in status.halted

        # When it is rebuilt from the store, then the missed patient is charted, its offset
        # starts where Kafka's does, and the runner goes on with what comes next
        rebuild(
            pool,
            pg_store,
            CHART,
            reads_settings.read_schema,
            starts=partial(start_offsets, kafka, {wire}),
        )
        with pool.connection() as conn:
            assert fetch_chart(conn, missed) is not None
            assert stored_offsets(conn.cursor(), CHART.name)[wire, 0] == 1
        later = register(pg_store, "Afterrebuild")
        publish(later)

        def charted() -> bool:
            with pool.connection() as conn:
                return fetch_chart(conn, later) is not None

        assert run_for(private, pool, reads_settings, charted, 60) is None
        assert charted()
    finally:
        producer.close()
        admin.delete_topics([wire])
        admin.close()
        pool.close()
