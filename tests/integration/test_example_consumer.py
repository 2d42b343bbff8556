"""The department consumer of docs/examples sees a patient's events and purges an erased one."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.commands.patients import ErasePatient, RegisterPatient
from events.settings import StoreSettings
from projections.engine.kafka_clients import kafka_connection
from services.local_stack.processes import wait_until
from services.settings import ServiceSettings
from services.synthetic import LISINOPRIL
from tests.integration.key_service import serving_keys
from tests.integration.relaying import build_relay, relay_status
from tests.integration.test_relay import RelayThread
from tests.unit.conftest import ctx

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "department_consumer.py"


def register(store: ClinicalStore, mrn: str) -> tuple[UUID, int]:
    result = store.register_patient(
        ctx(),
        RegisterPatient(
            mrn=mrn,
            family_name="Example",
            given_names=("Dept",),
            birth_date=date(1960, 5, 17),
            sex="unknown",
        ),
    )
    return result.id, result.position


def run_example(
    settings: ServiceSettings, store: StoreSettings, tmp: Path, *args: str
) -> list[dict[str, Any]]:
    """Run the example as a department would, as principal ``department-example`` with the
    file ``backbone kafka client-config department-example --json`` prints, for the store
    and topic prefix of this test's deployment; its stdout lines, parsed."""
    config = tmp / "department-example.json"
    config.write_text(json.dumps(kafka_connection(settings, "department-example").as_json()))
    deployment = ["--store", store.store_name, "--topic-prefix", settings.topic_prefix]
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE), "--client-config", str(config), *deployment, *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


def test_a_department_consumer_sees_its_patients_events_and_purges_an_erased_patient(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    tmp_path: Path,
) -> None:
    # Given two registered patients, one prescribed lisinopril and the other erased
    run = uuid.uuid4().hex[:8].upper()
    kept, registered_at = register(pg_store, f"EX-{run}-1")
    erased, _ = register(pg_store, f"EX-{run}-2")
    prescribed_at = pg_store.prescribe(ctx(), LISINOPRIL.prescribe(kept)).position
    head = pg_store.forget(
        ctx(reason="erasure request"), ErasePatient(erased, "GDPR art. 17")
    ).position

    # and the relay has published everything to Kafka
    with RelayThread(build_relay(settings, store_settings)):
        published = wait_until(
            lambda: relay_status(settings, store_settings)[0].position >= head, 30, 0.1
        )
    assert published, "the relay did not publish the events in time"

    # When a new department group reads its topics from the beginning, for these patients,
    # opening the payloads with keys from the store's key service
    with serving_keys(pg_store, store_settings, settings) as keys:
        lines = run_example(
            settings,
            store_settings,
            tmp_path,
            "--key-service",
            f"https://127.0.0.1:{keys.port}",
            "--group",
            f"department.test.{uuid.uuid4()}",  # a group prefix department-example is granted
            "--from-beginning",
            "--patients",
            f"{kept},{erased}",
            "--idle-timeout-s",
            "10",
        )

    # Then it saw the kept patient's registration and prescription, at the store's positions
    seen = sorted(
        (line["position"], line["event_type"], line["topic"])
        for line in lines
        if line.get("patient_id") == str(kept)
    )
    assert seen == [
        (registered_at, "patient.registered", "clinical.patients"),
        (prescribed_at, "medication.prescribed", "clinical.medications"),
    ]
    # and it purged the erased patient without ever printing one of their events
    assert {"purge": str(erased)} in lines
    assert not [line for line in lines if line.get("patient_id") == str(erased)]
