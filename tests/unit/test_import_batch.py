"""The bulk import path: commands decided one by one, saved together, all or none."""

from __future__ import annotations

import pytest

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import RecordAllergy
from events.domain.aggregates import patients
from events.domain.errors import ClinicalRuleViolation, ConflictError, DuplicateMRN
from tests.unit.conftest import NURSE, ctx
from tests.unit.test_write_side import registered, registration


def stored_count(store: ClinicalStore) -> int:
    return len(store.recorder.select_notifications(start=None, limit=10_000))


def test_an_import_batch_saves_every_command_at_once_with_positions(store: ClinicalStore) -> None:
    with store.importing() as batch:
        ids = [store.register_patient(ctx(), registration(f"MRN-B{i}")).id for i in range(3)]
        assert stored_count(store) == 0  # nothing is saved before the block ends

    assert [r.id for r in batch.results] == ids
    assert [r.position for r in batch.results] == [1, 2, 3]
    for patient_id in ids:
        patient = store.load(patient_id, patients.evolve)
        assert patient is not None and patient.version == 1


def test_a_refused_command_in_a_batch_saves_nothing(store: ClinicalStore) -> None:
    patient_id = registered(store)
    before = stored_count(store)

    with pytest.raises(ClinicalRuleViolation), store.importing():
        store.register_patient(ctx(), registration("MRN-B-ok"))
        store.record_vitals(ctx(NURSE), RecordVitals(patient_id, heart_rate=-5))

    assert stored_count(store) == before


def test_a_batch_changing_one_record_twice_is_refused_whole(store: ClinicalStore) -> None:
    patient_id = registered(store)
    before = stored_count(store)

    with pytest.raises(ConflictError, match="each record once"), store.importing():
        store.record_allergy(ctx(), RecordAllergy(patient_id, "penicillin", "rash", "moderate"))
        store.record_allergy(ctx(), RecordAllergy(patient_id, "latex", "hives", "mild"))

    assert stored_count(store) == before


def test_importing_an_already_registered_patient_is_refused(store: ClinicalStore) -> None:
    registered(store, "MRN-B-dup")

    with pytest.raises(DuplicateMRN), store.importing():
        store.register_patient(ctx(), registration("MRN-B-new"))
        store.register_patient(ctx(), registration("MRN-B-dup"))

    assert stored_count(store) == 1


def test_import_batches_refuse_idempotency_keys(store: ClinicalStore) -> None:
    with pytest.raises(ValueError, match="idempotency"), store.importing():
        store.register_patient(ctx(idempotency_key="k1"), registration("MRN-B-key"))
    assert stored_count(store) == 0


def test_a_batch_reads_each_record_once(store: ClinicalStore) -> None:
    patient_id = registered(store)
    reads: list[object] = []
    original = store.repository.get

    def counting_get(*args: object, **kwargs: object) -> object:
        reads.append(args[0])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store.repository.get = counting_get  # type: ignore[method-assign,assignment]
    with store.importing() as batch:
        for heart_rate in (60, 70, 80):
            store.record_vitals(ctx(NURSE), RecordVitals(patient_id, heart_rate=heart_rate))

    assert reads == [patient_id]
    assert len(batch.results) == 3
