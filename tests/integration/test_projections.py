"""The read side on real Kafka and PostgreSQL: live tables equal a rebuild from the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import RecordAllergy
from events.domain.topics import DEADLETTER, PATIENTS
from events.settings import StoreSettings
from projections.chart import fetch_chart, wait_for_position
from projections.engine.database import read_pool
from projections.engine.kafka_clients import KafkaConnection, kafka_connection
from projections.engine.offsets import end_offsets
from projections.engine.rebuild import rebuild
from projections.engine.service import projection_statuses, start_at_end
from projections.registry import ALL, named
from projections.settings import ProjectionSettings
from services.local_stack.processes import wait_until
from services.settings import ServiceSettings, get_settings
from tests.cli import migrated
from tests.integration.key_service import serving_keys
from tests.integration.projection_harness import (
    caught_up,
    isolated_settings,
    running_projections,
    table_differences,
)
from tests.integration.relaying import build_relay, relay_status
from tests.integration.test_relay import RelayThread
from tests.integration.workload import NURSE, as_, run_workload

pytestmark = pytest.mark.integration


@dataclass
class ReadSide:
    store: ClinicalStore
    store_settings: StoreSettings
    settings: ProjectionSettings
    pool: ConnectionPool
    patients: list[UUID]

    def published(self) -> bool:
        """The relay has published the store's head."""
        state, head = relay_status(get_settings(), self.store_settings)
        return state.position >= head


@pytest.fixture
def read_side(
    pg_store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> Iterator[ReadSide]:
    with serving_keys(pg_store, store_settings, settings) as keys:
        projection_settings = isolated_settings(store_settings).model_copy(
            update={"key_service_port": keys.port}
        )
        pool = read_pool(projection_settings)
        start_at_end(pool, projection_settings, ALL)
        yield ReadSide(pg_store, store_settings, projection_settings, pool, [])
        pool.close()


def assert_live_equals_rebuild(side: ReadSide) -> dict[str, int]:
    rows: dict[str, int] = {}
    for projection in ALL:
        differences = table_differences(
            side.pool, side.store, projection, side.settings.read_schema
        )
        rows.update(differences.pop("_rows"))
        assert differences == {}, f"{projection.name}: {differences}"
    return rows


def test_a_workload_of_200_patients_projects_live_exactly_as_a_rebuild_from_the_store(
    read_side: ReadSide, settings: ServiceSettings
) -> None:
    patients = run_workload(read_side.store, 200, "W")

    with (
        RelayThread(build_relay(settings, read_side.store_settings)),
        running_projections(read_side.pool, read_side.settings),
    ):
        assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
        rows = assert_live_equals_rebuild(read_side)

        # every table has content, and erased patients are gone from all of them
        assert all(count > 0 for count in rows.values()), rows
        with read_side.pool.connection() as conn:
            for table in (
                "patients",
                "allergies",
                "latest_vitals",
                "vital_signs",
                "encounters",
                "medication_orders",
                "medication_history",
                "lab_orders",
                "lab_results",
                "care_team",
            ):
                left = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE patient_id = ANY(%s)",  # noqa: S608
                    (patients[:3],),
                ).fetchone()
                assert left == (0,), table
            # the access log keeps who read an erased patient, and nothing of what they read
            kept = conn.execute(
                "SELECT count(*), count(section) + count(purpose) + count(reason) "
                "FROM access_audit WHERE patient_id = ANY(%s)",
                (patients[:3],),
            ).fetchone()
            assert kept is not None and kept[0] > 0 and kept[1] == 0, kept
            chart = fetch_chart(conn, patients[4])
            assert chart is not None
            assert set(chart.body) == {
                "patient",
                "allergies",
                "allergy_status",
                "active_medications",
                "pending_orders",
                "recent_results",
                "latest_vitals",
                "latest_weight",
                "latest_height",
                "encounter",
                "encounters",
            }
            # patient 4 was admitted, moved to the ICU and discharged; patient 5 is admitted
            assert chart.body["encounter"] is None
            [past] = chart.body["encounters"]
            assert past["location"]["ward"] == "ICU" and past["disposition"] == "home"
            admitted = fetch_chart(conn, patients[5])
            assert admitted is not None and admitted.body["encounter"]["class"] == "inpatient"
            assert admitted.body["encounter"]["location"]["ward"] == "Ward 1"
            assert chart.body["recent_results"][0]["trend"] in ("up", "down", "same")
            assert {"heart_rate", "spo2"} <= set(chart.body["latest_vitals"])
            assert chart.position > 0
            assert fetch_chart(conn, patients[0]) is None

        # rebuild-and-swap while live: later events still land once, nothing missed
        report = rebuild(
            read_side.pool, read_side.store, named("lab_results"), read_side.settings.read_schema
        )
        assert report.events > 0
        more = run_workload(read_side.store, 5, "X", seed=11)
        assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
        assert_live_equals_rebuild(read_side)
        with read_side.pool.connection() as conn:
            latest = read_side.store.record_vitals(
                as_(NURSE), RecordVitals(more[4], heart_rate=188)
            )
            assert wait_for_position(conn, read_side.store.event_log, latest.position, 30)
            chart = fetch_chart(conn, more[4])
            assert chart is not None and chart.body["latest_vitals"]["heart_rate"]["flag"] == "H"
            assert chart.position == latest.position


def _runner_process(side: ReadSide) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BACKBONE_STORE_NAME": side.store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(side.store_settings.master_key_file),
        "BACKBONE_WITNESS_DIR": str(side.store_settings.witness_dir),
        "BACKBONE_READ_SCHEMA": side.settings.read_schema,
        "BACKBONE_CONSUMER_GROUP_PREFIX": side.settings.consumer_group_prefix,
        "BACKBONE_PROJECTION_MAX_POLL_RECORDS": "20",
        "BACKBONE_KEY_SERVICE_PORT": str(side.settings.key_service_port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "project"],
        env=migrated(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_runner_killed_mid_batch_resumes_and_still_equals_the_rebuild(
    read_side: ReadSide, settings: ServiceSettings
) -> None:
    run_workload(read_side.store, 60, "K")
    with RelayThread(build_relay(settings, read_side.store_settings)):
        first = _runner_process(read_side)
        try:
            progressed = wait_until(
                lambda: (
                    sum(s.applied_total for s in projection_statuses(read_side.pool, ALL)) >= 300
                ),
                120,
                0.05,
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert progressed
        assert not caught_up(read_side.pool, read_side.settings, timeout_s=0), (
            "finished before the kill"
        )

        second = _runner_process(read_side)
        try:
            assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    assert_live_equals_rebuild(read_side)


def _group_members(settings: ServiceSettings, group: str) -> list[set[tuple[str, int]]]:
    """Each member of the consumer group with the partitions it is assigned."""
    admin = KafkaAdminClient(**kafka_connection(settings).client_kwargs())
    try:
        described = admin.describe_groups([group]).get(group, {})
    finally:
        admin.close()
    return [
        {
            (str(assigned["topic"]), int(partition))
            for assigned in (member.get("member_assignment") or {}).get("assigned_partitions", ())
            for partition in assigned["partitions"]
        }
        for member in described.get("members", ())
    ]


def test_two_instances_split_the_partitions_and_one_killed_mid_batch_leaves_a_rebuilds_tables(
    read_side: ReadSide, settings: ServiceSettings
) -> None:
    """Two ``backbone project`` processes share each projection's consumer group; one is
    SIGKILLed mid-stream, the other takes its partitions over from the offsets stored in
    PostgreSQL with the writes: nothing applied twice, nothing skipped."""
    run_workload(read_side.store, 60, "S")
    group = (
        f"{read_side.settings.consumer_group_prefix}.{read_side.settings.read_schema}.patient_chart"
    )
    with RelayThread(build_relay(settings, read_side.store_settings)):
        instances = [_runner_process(read_side), _runner_process(read_side)]
        try:
            split = wait_until(
                lambda: (
                    len(members := _group_members(settings, group)) == 2
                    and all(members)
                    and not members[0] & members[1]
                ),
                60,
                0.2,
            )
            assert split, (
                f"the instances did not split the partitions: {_group_members(settings, group)}"
            )
            progressed = wait_until(
                lambda: (
                    sum(s.applied_total for s in projection_statuses(read_side.pool, ALL)) >= 300
                ),
                120,
                0.05,
            )
        finally:
            instances[0].send_signal(signal.SIGKILL)
            instances[0].wait(timeout=10)
        assert progressed
        assert not caught_up(read_side.pool, read_side.settings, timeout_s=0), (
            "finished before the kill"
        )
        try:
            assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
            assert wait_until(lambda: len(_group_members(settings, group)) == 1, 60, 0.5)
        finally:
            instances[1].send_signal(signal.SIGTERM)
            instances[1].wait(timeout=30)
    assert_live_equals_rebuild(read_side)


def test_a_message_delivered_twice_applies_once_and_a_poison_message_is_dead_lettered(
    read_side: ReadSide, settings: ServiceSettings
) -> None:
    patients = run_workload(read_side.store, 8, "P")
    patient = patients[5]
    kafka = kafka_connection(settings)
    # this session's topics
    patients_topic, deadletter_topic = kafka.topics.names((PATIENTS.name, DEADLETTER.name))
    deadletter_start = end_offsets(kafka, {deadletter_topic})
    with (
        RelayThread(build_relay(settings, read_side.store_settings)),
        running_projections(read_side.pool, read_side.settings),
    ):
        assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
        applied_before = {s.name: s.applied_total for s in projection_statuses(read_side.pool, ALL)}

        # the same message again, as a redelivery would bring it
        copy = _first_message_of(kafka, patient)
        producer = KafkaProducer(**kafka.client_kwargs(), acks="all")
        producer.send(patients_topic, key=str(patient).encode(), value=copy)
        # then a poison message on the same patient's partition, then a real event after it
        producer.send(
            patients_topic,
            key=str(patient).encode(),
            value=b'{"event_type": "patient.registered", "garbage": true}',
        )
        producer.flush()
        producer.close()
        read_side.store.record_allergy(as_(NURSE), RecordAllergy(patient, "latex", "rash", "mild"))

        assert caught_up(read_side.pool, read_side.settings, published=read_side.published)
        statuses = {s.name: s for s in projection_statuses(read_side.pool, ALL)}
        with read_side.pool.connection() as conn:
            chart = fetch_chart(conn, patient)
        assert chart is not None
        assert "latex" in [a["substance"] for a in chart.body["allergies"]]
        assert statuses["patient_chart"].applied_total == applied_before["patient_chart"] + 1
        assert all(s.deadlettered_total == 1 for s in statuses.values())
    assert_live_equals_rebuild(read_side)

    letters = [
        json.loads(value)
        for key, value in _messages_since(kafka, deadletter_topic, deadletter_start)
        if key == str(patient).encode()
    ]
    assert sorted(letter["projection"] for letter in letters) == sorted(p.name for p in ALL)
    assert all(letter["reason"].startswith("invalid envelope") for letter in letters)
    assert all(letter["source"]["topic"] == patients_topic for letter in letters)


def _first_message_of(kafka: KafkaConnection, patient: UUID) -> bytes:
    consumer = KafkaConsumer(
        **kafka.client_kwargs(), consumer_timeout_ms=3000, auto_offset_reset="earliest"
    )
    topic = kafka.topics.of(PATIENTS.name)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    try:
        for message in consumer:
            if message.key == str(patient).encode():
                return bytes(message.value)
    finally:
        consumer.close()
    raise AssertionError("no message for the patient")


def _messages_since(
    kafka: KafkaConnection, topic: str, start: dict[tuple[str, int], int]
) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(**kafka.client_kwargs(), consumer_timeout_ms=3000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, start.get((tp.topic, tp.partition), 0))
    try:
        return [(bytes(m.key or b""), bytes(m.value)) for m in consumer]
    finally:
        consumer.close()
