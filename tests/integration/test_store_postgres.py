"""The clinical store on the real PostgreSQL: races, idempotency, encryption at rest, upcasting."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from events.application import ClinicalStore
from events.commands.base import CommandResult
from events.commands.medications import ChangeMedication, Prescribe
from events.commands.observations import RecordVitals
from events.commands.orders import CollectSpecimen, PlaceOrder, ReceiveResults
from events.commands.patients import ErasePatient, RegisterPatient
from events.domain.aggregates import medications, patients
from events.domain.aggregates.orders import AnalyteInput
from events.domain.errors import ConflictError, PatientErasedError, RequestInFlight
from events.domain.payloads.observations import VitalsRecorded
from events.settings import StoreSettings
from services.bootstrap import build_store
from services.local_stack.postgres import find_bin_dir
from tests.unit.conftest import LAB, NURSE, FakeClock, ctx
from tests.unit.test_upcasting import store_v1_vitals

pytestmark = pytest.mark.integration


def register(store: ClinicalStore, mrn: str, family: str = "Okonkwo") -> uuid.UUID:
    registration = RegisterPatient(
        mrn=mrn, family_name=family, given_names=("Ada",), birth_date=date(1961, 4, 2), sex="female"
    )
    return store.register_patient(ctx(), registration).id


def amoxicillin(patient_id: uuid.UUID) -> Prescribe:
    return Prescribe(
        patient_id,
        drug_code="723",
        drug_name="amoxicillin",
        dose=500,
        dose_unit="mg",
        route="oral",
        frequency="tid",
    )


def race(*commands: Callable[[], CommandResult]) -> list[CommandResult | Exception]:
    """Run the commands at the same moment on separate threads."""
    barrier = threading.Barrier(len(commands))

    def attempt(command: Callable[[], CommandResult]) -> CommandResult | Exception:
        barrier.wait()
        try:
            return command()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(attempt, commands))


@contextmanager
def loads_meet(store: ClinicalStore, stream_id: uuid.UUID) -> Iterator[None]:
    """Inside the block, two commands that load ``stream_id`` wait for each other after
    loading it, so both decide on the same version."""
    both_loaded = threading.Barrier(2)
    original_load = store.load

    def load_then_wait(loaded: uuid.UUID, evolve: Any) -> Any:
        state = original_load(loaded, evolve)
        if loaded == stream_id:
            both_loaded.wait(timeout=10)
        return state

    store.load = load_then_wait  # type: ignore[method-assign]
    try:
        yield
    finally:
        store.load = original_load  # type: ignore[method-assign]


def test_two_concurrent_changes_to_one_medication_order_one_wins_one_conflicts(
    pg_store: ClinicalStore,
) -> None:
    medication_id = pg_store.prescribe(ctx(), amoxicillin(register(pg_store, "MRN-C1"))).id
    with loads_meet(pg_store, medication_id):
        outcomes = race(
            lambda: pg_store.change_medication(
                ctx(reason="renal"), ChangeMedication(medication_id, dose=250)
            ),
            lambda: pg_store.change_medication(
                ctx(reason="weight"), ChangeMedication(medication_id, dose=750)
            ),
        )

    winners = [o for o in outcomes if isinstance(o, CommandResult)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], ConflictError)
    order = pg_store.load(medication_id, medications.evolve)
    assert order is not None and order.version == 2


def test_racing_commands_with_one_idempotency_key_store_once_and_answer_alike(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    # given two processes' stores on the same tables (each keeps its own in-flight keys, so
    # only the store's unique claim stands between their racing requests)
    patient_id = register(pg_store, "MRN-I1")
    other_process = build_store(store_settings)
    head = pg_store.recorder.max_notification_id()

    def send(store: ClinicalStore) -> Callable[[], CommandResult]:
        return lambda: store.record_vitals(
            ctx(NURSE, idempotency_key="vitals-42"), RecordVitals(patient_id, heart_rate=88)
        )

    try:
        outcomes = race(*[send(store) for store in (pg_store, other_process) * 2])
        retried = send(other_process)()
    finally:
        other_process.close()

    # then one event is stored; every request answers it, or 409 while the first was in
    # flight in the same process (IETF draft), and a retry afterwards answers it too
    assert all(isinstance(o, CommandResult | RequestInFlight) for o in outcomes), outcomes
    results = [o for o in outcomes if isinstance(o, CommandResult)] + [retried]
    assert len({(r.id, r.position) for r in results}) == 1
    assert pg_store.recorder.max_notification_id() == results[0].position
    stored = pg_store.recorder.select_notifications(start=head, limit=100, inclusive_of_start=False)
    assert len(stored) == 1


def test_a_patient_name_and_a_result_value_never_appear_in_a_dump_of_the_store(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    patient_id = register(pg_store, "MRN-Z1", family="Zanzibarova")
    order_id = pg_store.place_order(
        ctx(), PlaceOrder(patient_id, "2345-7", "Glucose", "routine")
    ).id
    pg_store.collect_specimen(ctx(NURSE), CollectSpecimen(order_id))
    pg_store.receive_results(
        ctx(LAB),
        ReceiveResults(order_id, (AnalyteInput("2345-7", "Glucose", 187.654, "mg/dL", 70, 99),)),
    )

    dump = subprocess.run(
        [
            str(find_bin_dir() / "pg_dump"),
            "--data-only",
            "-t",
            f"{store_settings.store_name}_*",
            store_settings.database_url,
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout

    assert len(dump) > 1000
    assert b"Zanzibarova" not in dump
    assert b"187.654" not in dump
    assert b"MRN-Z1" not in dump
    assert b"patient.registered" in dump  # the event type is routing metadata, stored clear


def test_forgetting_a_patient_on_postgres_is_seen_by_a_second_process(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    erased = register(pg_store, "MRN-F1")
    kept = register(pg_store, "MRN-F2")
    other_process = build_store(store_settings)
    assert other_process.load(erased, patients.evolve) is not None

    pg_store.forget(ctx(reason="erasure request"), ErasePatient(erased, "GDPR art. 17"))

    with pytest.raises(PatientErasedError):
        other_process.load(erased, patients.evolve)
    assert other_process.load(kept, patients.evolve) is not None
    other_process.close()


def test_v1_vitals_stored_on_postgres_are_read_as_v2(pg_store: ClinicalStore) -> None:
    original = store_v1_vitals(pg_store, FakeClock(), "118/76")
    (read,) = pg_store.events_of(original.originator_id)
    assert isinstance(read.payload, VitalsRecorded)
    assert (read.payload.systolic_bp, read.payload.diastolic_bp, read.payload.flags) == (
        118,
        76,
        {},
    )
