"""Two deployments on one real Kafka cluster never mix (issue 19, "no mixing").

After ``make bench``, a ``make run`` on the same machine applied the bench's events from
the shared topics. Here, on the real broker with its TLS and ACLs: an envelope another
store published reaches a store's projection and is dead-lettered with the reason, never
applied and never worth a key fetch; and two topic prefixes are two sets of topics, each
deployment's projections seeing only their own.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.domain.topics import DEADLETTER, PATIENTS
from events.settings import StoreSettings
from events.store.keys import create_master_key
from projections import patient_chart
from projections.chart import fetch_chart
from projections.engine.database import create_tables, read_pool
from projections.engine.kafka_clients import KafkaConnection, kafka_connection
from projections.engine.offsets import end_offsets
from projections.engine.service import projection_statuses, run_projections, start_at_end
from projections.settings import ProjectionSettings
from services.bootstrap import build_store, service_pool
from services.local_stack.kafka import LocalKafka
from services.local_stack.processes import wait_until
from services.settings import ServiceSettings
from tests.integration.key_service import serving_keys
from tests.integration.projection_harness import isolated_settings
from tests.integration.test_store_postgres import register

pytestmark = pytest.mark.integration

CHART = patient_chart.PROJECTION


@pytest.fixture
def other_store(tmp_path: Path, store_settings: StoreSettings) -> Iterator[ClinicalStore]:
    """A second store in the same database: another deployment's (a bench run's, say)."""
    key_file = tmp_path / "other.key"
    create_master_key(key_file)
    settings = store_settings.model_copy(
        update={"master_key_file": key_file, "store_name": f"o{uuid.uuid4().hex[:12]}"}
    )
    store = build_store(settings)
    yield store
    store.close()


@contextmanager
def charting(pool: ConnectionPool, settings: ProjectionSettings) -> Iterator[None]:
    """The chart projection of ``settings``' deployment, running in a thread, from now on."""
    start_at_end(pool, settings, (CHART,))
    with pool.connection() as conn:
        create_tables(conn, settings.read_schema)  # the chart reads every read table
    stop = threading.Event()
    thread = threading.Thread(
        target=run_projections, args=((CHART,), pool, settings, stop), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def publish(kafka: KafkaConnection, store: ClinicalStore, patient: UUID) -> None:
    """The patient's events as the relay seals them, sent as the relay principal to the
    patients topic of ``kafka``'s deployment."""
    relay = KafkaProducer(**kafka.client_kwargs(), acks="all")
    try:
        for envelope in store.payload_keys.published(store.event_log.of_patient(patient)):
            relay.send(
                kafka.topics.of(PATIENTS.name),
                key=str(patient).encode(),
                value=json.dumps(envelope).encode(),
            ).get(timeout=30)
    finally:
        relay.close()


def charted(pool: ConnectionPool, patient: UUID) -> bool:
    with pool.connection() as conn:
        return fetch_chart(conn, patient) is not None


def dead_letters_since(
    kafka: KafkaConnection, start: dict[tuple[str, int], int]
) -> list[tuple[bytes, dict[str, Any]]]:
    consumer = KafkaConsumer(**kafka.client_kwargs(), consumer_timeout_ms=3000)
    try:
        partitions = [TopicPartition(t, p) for t, p in start]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp.topic, tp.partition])
        return [(m.key, json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()


def test_a_projection_dead_letters_another_stores_envelope_with_the_reason(
    pg_store: ClinicalStore,
    other_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
) -> None:
    # Given store A's chart projection, and store B publishing on the same topics
    ours, theirs = register(pg_store, "APART-A1", "Ourown"), register(other_store, "APART-B1")
    operator, relay = kafka_connection(settings), kafka_connection(settings, "relay")
    deadletter = operator.topics.of(DEADLETTER.name)
    start = end_offsets(operator, {deadletter})
    with serving_keys(pg_store, store_settings, settings) as keys:
        reads_settings = isolated_settings(store_settings).model_copy(
            update={"key_service_port": keys.port}
        )
        pool = read_pool(reads_settings)
        try:
            with charting(pool, reads_settings):
                # When B's registration arrives first, then A's
                publish(relay, other_store, theirs)
                publish(relay, pg_store, ours)
                assert wait_until(lambda: charted(pool, ours), 60, 0.2)
                # Then A's is charted, B's is not, and it went to the dead-letter topic
                assert not charted(pool, theirs)
                [status] = projection_statuses(pool, (CHART,))
                assert status.deadlettered_total == 1 and status.halted is None
        finally:
            pool.close()

    letters = [
        body for key, body in dead_letters_since(operator, start) if key == str(theirs).encode()
    ]
    assert [letter["reason"] for letter in letters] == [
        f"from store {other_store.name}, this deployment is store {pg_store.name}"
    ]
    assert letters[0]["projection"] == CHART.name
    assert letters[0]["source"]["topic"] == operator.topics.of(PATIENTS.name)
    # and no key of B's patient was ever asked of A's key service
    audit = service_pool(store_settings, max_size=2)
    try:
        with audit.connection() as conn:
            fetched = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE patient_id = %s").format(
                    sql.Identifier(f"{store_settings.store_name}_key_fetches")
                ),
                (theirs,),
            ).fetchone()
    finally:
        audit.close()
    assert fetched == (0,)


def test_two_topic_prefixes_are_two_deployments_that_never_see_each_others_messages(
    pg_store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> None:
    # Given a second deployment on the cluster, under a prefix of its own
    other = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}other."})
    second = LocalKafka(other)
    second.ensure_topics()
    second.ensure_acls()
    here, there = register(pg_store, "APART-P1", "Here"), register(pg_store, "APART-P2", "There")
    try:
        with (
            serving_keys(pg_store, store_settings, settings) as keys_here,
            serving_keys(pg_store, store_settings, other) as keys_there,
        ):
            settings_here = isolated_settings(store_settings).model_copy(
                update={"key_service_port": keys_here.port}
            )
            settings_there = isolated_settings(store_settings).model_copy(
                update={"key_service_port": keys_there.port, "topic_prefix": other.topic_prefix}
            )
            pool_here, pool_there = read_pool(settings_here), read_pool(settings_there)
            try:
                with charting(pool_here, settings_here), charting(pool_there, settings_there):
                    # When one patient is published under each prefix
                    publish(kafka_connection(settings, "relay"), pg_store, here)
                    publish(kafka_connection(other, "relay"), pg_store, there)
                    # Then each deployment charts its own patient, and only its own
                    assert wait_until(lambda: charted(pool_here, here), 60, 0.2)
                    assert wait_until(lambda: charted(pool_there, there), 60, 0.2)
                    assert not charted(pool_here, there) and not charted(pool_there, here)
                    for pool in (pool_here, pool_there):
                        [status] = projection_statuses(pool, (CHART,))
                        assert status.deadlettered_total == 0
            finally:
                pool_here.close()
                pool_there.close()
    finally:
        removed = second.remove_deployment()
    assert sorted(removed) == sorted(t.name for t in other.topic_names.all())
