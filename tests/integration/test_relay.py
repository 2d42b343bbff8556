"""Every stored event reaches Kafka, per patient in store order: real broker, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient, RegisterPatient
from events.domain.contract import spec_of
from events.domain.topics import PATIENTS
from events.settings import StoreSettings
from events.store.kafka_payloads import open_sealed
from events.store.keys import OPERATIONS_KEY_ID
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.relay.relay import Relay
from services.settings import ServiceSettings
from tests.cli import migrated
from tests.integration.contract_reader import ContractReader
from tests.integration.relaying import build_relay, relay_status
from tests.unit.conftest import NURSE, ctx

pytestmark = pytest.mark.integration


def register_patients(store: ClinicalStore, count: int, prefix: str) -> list[UUID]:
    return [
        store.register_patient(
            ctx(),
            RegisterPatient(
                mrn=f"{prefix}-{i:05d}",
                family_name=f"Family{i}",
                given_names=("Test",),
                birth_date=date(1970, 1, 1),
                sex="unknown",
            ),
        ).id
        for i in range(count)
    ]


def record_vitals_round_robin(store: ClinicalStore, patients: list[UUID], count: int) -> None:
    for i in range(count):
        patient = patients[i % len(patients)]
        store.record_vitals(ctx(NURSE), RecordVitals(patient, heart_rate=60 + i % 40))


def stored_positions(store: ClinicalStore) -> dict[tuple[str, str], list[int]]:
    """Store positions per (patient, topic), in store order."""
    by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
    start = 0
    while batch := store.recorder.select_notifications(
        start=start, limit=1000, inclusive_of_start=False
    ):
        for n in batch:
            header = store.clinical_mapper.decode_header(n)
            topic = spec_of(header.event_type).topic.name
            by_stream[(str(header.patient_id), topic)].append(n.id)
        start = batch[-1].id
    return by_stream


@pytest.fixture
def reader(settings: ServiceSettings, stack: LocalStack) -> Iterator[ContractReader]:
    contract_reader = ContractReader(settings)
    yield contract_reader
    contract_reader.close()


class RelayThread:
    """The relay running in this process, stoppable."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stop = threading.Event()
        self.thread = threading.Thread(target=relay.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> RelayThread:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def ours(patients: set[str]) -> Any:
    return lambda envelope: envelope["patient_id"] in patients


def test_5000_events_over_200_patients_all_arrive_in_per_patient_store_order(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
) -> None:
    patients = register_patients(pg_store, 200, "A")
    record_vitals_round_robin(pg_store, patients, 4800)
    expected = stored_positions(pg_store)
    assert sum(len(v) for v in expected.values()) == 5000

    with RelayThread(build_relay(settings, store_settings)):
        arrived = reader.poll_until(
            lambda r: len(r.event_ids()) >= 5000, 120, ours({str(p) for p in patients})
        )

    assert arrived, f"only {len(reader.event_ids())} of 5000 events arrived"
    assert reader.first_seen_positions() == expected
    first = reader.envelopes[0]
    assert reader.keys[0] == first["patient_id"].encode()
    assert reader.headers[0]["event_type"] == first["event_type"].encode()
    assert reader.headers[0]["schema_version"] == str(first["schema_version"]).encode()
    status, head = relay_status(settings, store_settings)
    assert status.position == head and status.published_total == 5000
    with psycopg.connect(store_settings.database_url) as conn:
        signed = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(f"{store_settings.store_name}_events_checkpoints")
            )
        ).fetchone()
    assert signed is not None and signed[0] >= 1, "the relay signs the chain head periodically"


def _relay_process(store_settings: StoreSettings, batch_size: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BACKBONE_STORE_NAME": store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(store_settings.master_key_file),
        "BACKBONE_WITNESS_DIR": str(store_settings.witness_dir),
        "BACKBONE_RELAY_BATCH_SIZE": str(batch_size),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "relay"],
        env=migrated(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_relay_killed_mid_stream_resumes_without_loss_and_duplicates_only_its_last_batch(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
) -> None:
    batch_size = 50
    patients = register_patients(pg_store, 100, "B")
    record_vitals_round_robin(pg_store, patients, 3900)
    expected = stored_positions(pg_store)
    head = max(max(v) for v in expected.values())

    first = _relay_process(store_settings, batch_size)
    assert wait_until(lambda: relay_status(settings, store_settings)[0].position >= 500, 60, 0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = relay_status(settings, store_settings)[0].position
    assert killed_at < head, "the relay finished before it could be killed mid-stream"

    second = _relay_process(store_settings, batch_size)
    try:
        arrived = reader.poll_until(
            lambda r: len(r.event_ids()) >= 4000, 120, ours({str(p) for p in patients})
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    assert arrived, f"only {len(reader.event_ids())} of 4000 events arrived"
    assert reader.first_seen_positions() == expected
    duplicates = reader.duplicate_positions()
    assert all(killed_at < p <= killed_at + batch_size for p in duplicates), (killed_at, duplicates)


def test_a_broker_down_for_20_seconds_delays_events_but_loses_none(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
    stack: LocalStack,
) -> None:
    patients = register_patients(pg_store, 20, "C")
    stop_writing = threading.Event()

    def keep_writing() -> None:
        while not stop_writing.is_set():
            record_vitals_round_robin(pg_store, patients, 5)
            time.sleep(0.2)

    writer = threading.Thread(target=keep_writing, daemon=True)
    with RelayThread(build_relay(settings, store_settings)):
        writer.start()
        time.sleep(2)
        stack.kafka.stop()
        outage_started = time.monotonic()
        saw_unreachable = wait_until(
            lambda: relay_status(settings, store_settings)[0].state == "kafka_unreachable", 25, 0.5
        )
        time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))
        stack.up()
        time.sleep(2)
        stop_writing.set()
        writer.join(timeout=30)
        expected = stored_positions(pg_store)
        total = sum(len(v) for v in expected.values())
        arrived = reader.poll_until(
            lambda r: len(r.event_ids()) >= total, 120, ours({str(p) for p in patients})
        )

    assert saw_unreachable, "the relay never reported Kafka as unreachable"
    assert total > 100
    assert arrived, f"only {len(reader.event_ids())} of {total} events arrived"
    assert reader.first_seen_positions() == expected


def test_an_erased_patients_events_go_out_without_payload(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
) -> None:
    erased, kept = register_patients(pg_store, 2, "D")
    pg_store.record_vitals(ctx(NURSE), RecordVitals(erased, heart_rate=71))
    pg_store.record_vitals(ctx(NURSE), RecordVitals(kept, heart_rate=72))
    pg_store.forget(ctx(reason="erasure request"), ErasePatient(erased, "GDPR art. 17"))

    with RelayThread(build_relay(settings, store_settings)):
        arrived = reader.poll_until(
            lambda r: len(r.event_ids()) >= 5, 60, ours({str(erased), str(kept)})
        )

    assert arrived, [(e["event_type"], e["patient_id"]) for e in reader.envelopes]
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in sorted(reader.envelopes, key=lambda e: e["position"]):
        by_patient[envelope["patient_id"]].append(envelope)
    gone = by_patient[str(erased)]
    assert [e["event_type"] for e in gone] == [
        "patient.registered",
        "vitals.recorded",
        "patient.erased",
    ]
    assert all(e["erased"] and e["payload"] is None for e in gone)
    assert [e.get("payload_encrypted") for e in gone[:2]] == [None, None]
    # the erasure itself is sealed under the service key, which survives the patient's
    erasure = gone[2]["payload_encrypted"]
    assert erasure["key"] == "service"
    service = pg_store.payload_keys.for_subscribers(PATIENTS.name, {OPERATIONS_KEY_ID})
    opened = open_sealed(gone[2], service[OPERATIONS_KEY_ID] or b"")
    assert opened["payload"] == {"legal_basis": "GDPR art. 17"}
    kept_envelopes = by_patient[str(kept)]
    assert all(
        not e["erased"] and e["payload_encrypted"]["key"] == "patient" for e in kept_envelopes
    )


def test_an_idle_relay_wakes_on_the_stores_commit_notification_not_its_poll(
    pg_store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> None:
    relay = build_relay(settings.model_copy(update={"relay_poll_interval_s": 30.0}), store_settings)
    with RelayThread(relay):
        time.sleep(1.0)  # the relay has found nothing and waits on its 30 s poll
        register_patients(pg_store, 1, "W")
        position = pg_store.recorder.max_notification_id()
        began = time.monotonic()
        assert wait_until(lambda: relay.position == position, 10, 0.005)
        assert time.monotonic() - began < 2.0
