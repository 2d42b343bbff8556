"""A projection behind what Kafka still holds halts and says so; a rebuild is the remedy.

Retention deletes old messages; a runner whose stored offset is below the start of what
Kafka keeps would, with ``auto_offset_reset="earliest"``, silently skip what it never
applied. Here retention is forced with DeleteRecords on the real broker (as the operator,
a super user) up to the partitions' ends."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from uuid import UUID

import pytest
from kafka import KafkaAdminClient, TopicPartition
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.patients import RegisterPatient
from events.domain.topics import PATIENTS
from events.settings import StoreSettings
from projections import patient_chart
from projections.chart import fetch_chart
from projections.engine.database import read_pool
from projections.engine.kafka_clients import kafka_connection
from projections.engine.offsets import end_offsets, start_offsets
from projections.engine.rebuild import rebuild
from projections.engine.runner import ProjectionHalted
from projections.engine.service import projection_statuses, run_projections, start_at_end
from projections.engine.state import stored_offsets
from projections.settings import ProjectionSettings
from services.keyservice.server import KeyServer
from services.local_stack.processes import wait_until
from services.settings import ServiceSettings
from tests.integration.key_service import serving_keys
from tests.integration.projection_harness import isolated_settings
from tests.integration.relaying import build_relay, relay_status
from tests.integration.test_relay import RelayThread
from tests.unit.conftest import ctx

pytestmark = pytest.mark.integration

CHART = patient_chart.PROJECTION


@pytest.fixture
def keys(
    pg_store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> Iterator[KeyServer]:
    with serving_keys(pg_store, store_settings, settings) as server:
        yield server


def register(store: ClinicalStore, family: str) -> UUID:
    mrn = f"RG-{uuid.uuid4().hex[:8]}"
    return store.register_patient(
        ctx(), RegisterPatient(mrn, family, ("Ada",), date(1970, 1, 1), "female")
    ).id


def publish_all(settings: ServiceSettings, store_settings: StoreSettings) -> None:
    def published() -> bool:
        state, head = relay_status(settings, store_settings)
        return state.position >= head

    with RelayThread(build_relay(settings, store_settings)):
        assert wait_until(published, 60, 0.1)


def run_for(
    pool: ConnectionPool, settings: ProjectionSettings, until: Callable[[], bool], timeout_s: float
) -> BaseException | None:
    """Run the chart projection until ``until()`` or ``timeout_s``; what it raised, if any."""
    stop, failures = threading.Event(), []

    def run() -> None:
        try:
            run_projections((CHART,), pool, settings, stop)
        except BaseException as exc:  # reported to the test
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: bool(failures) or until(), timeout_s, 0.2)
    stop.set()
    thread.join(timeout=60)
    return failures[0] if failures else None


def test_a_projection_behind_retention_halts_naming_the_rebuild_which_then_lets_it_go_on(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    keys: KeyServer,
) -> None:
    reads_settings = isolated_settings(store_settings).model_copy(
        update={"key_service_port": keys.port}
    )
    kafka = kafka_connection(reads_settings)
    pool = read_pool(reads_settings)
    admin = KafkaAdminClient(**kafka.client_kwargs(), client_id="retention-test")
    try:
        # Given a chart projection that has applied everything up to now
        start_at_end(pool, reads_settings, (CHART,))
        # and a registration published since, which retention then deletes unapplied
        missed = register(pg_store, "Missedbyretention")
        publish_all(settings, store_settings)
        ends = end_offsets(kafka, {PATIENTS.name})
        admin.delete_records({TopicPartition(t, p): end for (t, p), end in ends.items()})
        assert start_offsets(kafka, {PATIENTS.name}) == ends

        # When the projection runs, then it halts, says why and what to do, and skips nothing
        halted = run_for(pool, reads_settings, lambda: False, 60)
        assert isinstance(halted, ProjectionHalted), halted
        assert "retention deleted" in str(halted)
        assert "backbone rebuild patient_chart" in str(halted)
        with pool.connection() as conn:
            assert fetch_chart(conn, missed) is None
        status = next(s for s in projection_statuses(pool, (CHART,)) if s.name == CHART.name)
        assert status.halted is not None and "retention deleted" in status.halted

        # When it is rebuilt from the store, then the missed patient is charted, its offsets
        # start where Kafka does, and the runner goes on with what comes next
        starts = partial(start_offsets, kafka, CHART.topics)
        rebuild(pool, pg_store, CHART, reads_settings.read_schema, starts=starts)
        with pool.connection() as conn:
            assert fetch_chart(conn, missed) is not None
            offsets = stored_offsets(conn.cursor(), CHART.name)
        assert all(offsets[key] >= end for key, end in ends.items())
        later = register(pg_store, "Afterrebuild")
        publish_all(settings, store_settings)

        def charted() -> bool:
            with pool.connection() as conn:
                return fetch_chart(conn, later) is not None

        assert run_for(pool, reads_settings, charted, 60) is None
        assert charted()
    finally:
        admin.close()
        pool.close()
