"""Group commit on PostgreSQL: concurrent commands share a transaction, and lose nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from events.application import ClinicalStore
from events.commands.base import CommandResult
from events.commands.medications import ChangeMedication
from events.commands.observations import RecordVitals
from events.domain.errors import ConflictError, RequestInFlight
from events.store.recorders import ClinicalPostgresRecorder, Insertion
from events.store.verification import ChainVerifier
from tests.integration.test_store_postgres import amoxicillin, loads_meet, race, register
from tests.unit.conftest import NURSE, ctx

pytestmark = pytest.mark.integration


@contextmanager
def first_write_waits_for(recorder: ClinicalPostgresRecorder, queued: int) -> Iterator[None]:
    """Hold the first transaction until ``queued`` more commands wait behind it, so the
    next transaction is certain to carry them all together."""
    group = recorder.group_commit
    original = group._write
    held = threading.Event()

    def write(insertions: Sequence[Insertion]) -> Any:
        if not held.is_set():
            held.set()
            deadline = time.monotonic() + 10
            while group.waiting < queued and time.monotonic() < deadline:
                time.sleep(0.005)
        return original(insertions)

    group._write = write
    try:
        yield
    finally:
        group._write = original


def postgres_recorder(store: ClinicalStore) -> ClinicalPostgresRecorder:
    recorder = store.clinical_recorder
    assert isinstance(recorder, ClinicalPostgresRecorder)
    return recorder


def test_concurrent_commands_share_transactions_and_every_event_is_stored_and_chained(
    pg_store: ClinicalStore, verifier: ChainVerifier
) -> None:
    patients = [register(pg_store, f"MRN-G{i}") for i in range(8)]
    recorder = postgres_recorder(pg_store)
    head = recorder.max_notification_id() or 0
    batches_before, items_before = recorder.group_commit.batches, recorder.group_commit.items

    def vitals(patient: uuid.UUID) -> Callable[[], CommandResult]:
        return lambda: pg_store.record_vitals(ctx(NURSE), RecordVitals(patient, heart_rate=72))

    with first_write_waits_for(recorder, queued=7):
        outcomes = race(*[vitals(p) for p in patients])

    results = [o for o in outcomes if isinstance(o, CommandResult)]
    assert len(results) == 8, outcomes
    assert recorder.group_commit.items - items_before == 8
    assert recorder.group_commit.batches - batches_before == 2
    stored = recorder.select_notifications(start=head, limit=100, inclusive_of_start=False)
    assert sorted(r.position for r in results) == [n.id for n in stored]
    for patient, result in zip(patients, outcomes, strict=True):
        assert isinstance(result, CommandResult)
        assert pg_store.clinical_recorder.patient_notifications(patient)[-1].id == result.position
    verdict = verifier.verify()
    assert verdict.ok and verdict.checked == recorder.max_notification_id()


def test_a_conflict_in_a_shared_transaction_fails_only_that_command(
    pg_store: ClinicalStore, verifier: ChainVerifier
) -> None:
    patient = register(pg_store, "MRN-G-conflict")
    medication = pg_store.prescribe(ctx(), amoxicillin(patient)).id
    others = [register(pg_store, f"MRN-G-other{i}") for i in range(4)]
    recorder = postgres_recorder(pg_store)

    def change(dose: int) -> Callable[[], CommandResult]:
        return lambda: pg_store.change_medication(
            ctx(reason="renal"), ChangeMedication(medication, dose=dose)
        )

    def vitals(other: uuid.UUID) -> Callable[[], CommandResult]:
        return lambda: pg_store.record_vitals(ctx(NURSE), RecordVitals(other, heart_rate=70))

    with loads_meet(pg_store, medication), first_write_waits_for(recorder, queued=5):
        outcomes = race(change(250), change(750), *[vitals(o) for o in others])

    changes, rest = outcomes[:2], outcomes[2:]
    assert sorted(type(o).__name__ for o in changes) == ["CommandResult", "ConflictError"]
    assert any(isinstance(o, ConflictError) for o in changes)
    assert all(isinstance(o, CommandResult) for o in rest), rest
    # The rolled-back shared transaction left a gap in the positions, not in the chain.
    verdict = verifier.verify()
    stored = recorder.select_notifications(start=None, limit=100)
    assert verdict.ok and verdict.checked == len(stored)
    assert verdict.head == recorder.max_notification_id()


def test_idempotent_repeats_racing_through_group_commit_store_once(
    pg_store: ClinicalStore,
) -> None:
    # given four racing requests with one key while group commit holds the first write
    patient = register(pg_store, "MRN-G-idem")
    recorder = postgres_recorder(pg_store)
    head = recorder.max_notification_id() or 0

    def vitals() -> CommandResult:
        return pg_store.record_vitals(
            ctx(NURSE, idempotency_key="group-7"), RecordVitals(patient, heart_rate=91)
        )

    with first_write_waits_for(recorder, queued=0):
        outcomes = race(vitals, vitals, vitals, vitals)
    retried = vitals()

    # then one event is stored; the others answered 409 while it was in flight (IETF draft),
    # and a retry afterwards answers the first's result
    assert all(isinstance(o, CommandResult | RequestInFlight) for o in outcomes), outcomes
    results = [o for o in outcomes if isinstance(o, CommandResult)] + [retried]
    assert len({(o.id, o.position) for o in results}) == 1
    assert retried.replayed
    stored = recorder.select_notifications(start=head, limit=10, inclusive_of_start=False)
    assert len(stored) == 1
