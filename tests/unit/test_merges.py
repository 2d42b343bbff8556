"""Patient merges on the write side: both streams record it, the rules refuse what cannot be
merged, the merged record takes no new writes, the survivor's decisions see both records,
and an unmerge gives each record back."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.base import CommandResult
from events.commands.medications import DiscontinueMedication
from events.commands.merges import MergePatients, UnmergePatients
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient, RecordAllergy, RefuteAllergy, RegisterPatient
from events.domain.aggregates import patients
from events.domain.aggregates.patients import PatientMergedError
from events.domain.contract import read_payload, spec_of
from events.domain.errors import (
    ClinicalRuleViolation,
    NotFound,
    OverrideRequired,
    PatientErasedError,
    ReasonRequired,
)
from events.domain.payloads.merges import PatientMerged
from events.store.history import history_entries
from projections.engine.as_of import related_events
from services.synthetic import AMOXICILLIN, METFORMIN
from tests.unit.conftest import ADMIN, NURSE, PHYSICIAN, ctx


def registered(store: ClinicalStore, mrn: str, family: str = "Okafor") -> UUID:
    cmd = RegisterPatient(mrn, family, ("Ada",), date(1961, 4, 2), "female")
    return store.register_patient(ctx(ADMIN), cmd).id


def merge(store: ClinicalStore, survivor: UUID, merged: UUID) -> CommandResult:
    return store.merge_patients(ctx(ADMIN, reason="duplicate"), MergePatients(survivor, merged))


def state(store: ClinicalStore, patient_id: UUID) -> patients.Patient:
    found = store.load(patient_id, patients.evolve)
    assert found is not None
    return found


@pytest.fixture
def pair(store: ClinicalStore) -> tuple[UUID, UUID]:
    return registered(store, "MRN-1001"), registered(store, "MRN-1002", "Okafor-Bello")


def test_a_merge_is_recorded_on_both_streams_the_merged_copy_last(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    # given two records of one person
    survivor, merged = pair
    # when the second is merged into the first
    result = store.merge_patients(ctx(ADMIN, reason="same person"), MergePatients(survivor, merged))
    # then each stream has the event, keyed by its own record, naming both
    [*_, on_survivor] = store.events_of(survivor)
    [*_, on_merged] = store.events_of(merged)
    for event, own in ((on_survivor, survivor), (on_merged, merged)):
        assert event.event_type == "patient.merged"
        assert event.patient_id == own
        assert event.payload == PatientMerged(survivor_id=survivor, merged_id=merged)
        assert event.reason == "same person"
    # and the answer is the survivor, at the merged record's copy (the one projections use)
    logged = {e.stream_id: e.position for e in store.event_log.of_patient(merged)}
    assert result.id == survivor and result.position == logged[merged]
    assert result.position > max(e.position for e in store.event_log.of_patient(survivor))
    # and the states know it from both sides
    assert state(store, merged).merged_into == survivor
    assert state(store, survivor).merged_ids == (merged,)
    assert store.survivor_of(merged) == survivor
    assert store.merge_group(merged) == (survivor, (merged,))


def test_merges_refused_by_the_rules(store: ClinicalStore, pair: tuple[UUID, UUID]) -> None:
    survivor, merged = pair
    third = registered(store, "MRN-1003")
    with pytest.raises(ClinicalRuleViolation, match="itself"):
        merge(store, survivor, survivor)
    with pytest.raises(NotFound):
        merge(store, survivor, UUID(int=7))
    merge(store, survivor, merged)
    # the merged one is merged already: into this survivor, or (to another) at all
    with pytest.raises(ClinicalRuleViolation, match="already merged into"):
        merge(store, survivor, merged)
    with pytest.raises(ClinicalRuleViolation, match="unmerge it first"):
        merge(store, third, merged)
    # the survivor itself is merged: merge into its survivor instead
    with pytest.raises(ClinicalRuleViolation, match="instead"):
        merge(store, merged, third)
    # either record erased
    erased = registered(store, "MRN-1004")
    store.forget(ctx(reason="erasure request"), ErasePatient(erased, "GDPR art. 17"))
    with pytest.raises(PatientErasedError):
        merge(store, third, erased)
    with pytest.raises(PatientErasedError):
        merge(store, erased, third)


def test_a_merged_record_takes_no_new_writes_and_the_refusal_names_the_survivor(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    # given a prescription on the second record, then the merge
    survivor, merged = pair
    medication = store.prescribe(ctx(PHYSICIAN), METFORMIN.prescribe(merged)).id
    merge(store, survivor, merged)
    # then new writes to the merged record are refused (409), naming the survivor
    with pytest.raises(PatientMergedError, match=str(survivor)) as refused:
        store.record_vitals(ctx(NURSE), RecordVitals(merged, heart_rate=80))
    assert refused.value.survivor_id == survivor
    with pytest.raises(PatientMergedError):
        store.record_allergy(ctx(NURSE), RecordAllergy(merged, "latex", "rash", "mild"))
    # and it cannot be erased while merged
    with pytest.raises(PatientMergedError):
        store.forget(ctx(reason="erasure request"), ErasePatient(merged, "GDPR art. 17"))
    # but what it holds still moves: its prescription can be stopped
    store.discontinue_medication(ctx(PHYSICIAN, reason="merged"), DiscontinueMedication(medication))
    # and the survivor takes writes as before
    store.record_vitals(ctx(NURSE), RecordVitals(survivor, heart_rate=80))


def test_the_survivors_decisions_see_the_merged_records_allergies(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    # given a penicillin allergy on the merged record only
    survivor, merged = pair
    allergy = store.record_allergy(
        ctx(NURSE), RecordAllergy(merged, "penicillin", "hives", "severe")
    ).id
    merge(store, survivor, merged)
    # then amoxicillin for the survivor needs an override, as it would for the merged one
    with pytest.raises(OverrideRequired):
        store.prescribe(ctx(PHYSICIAN), AMOXICILLIN.prescribe(survivor))
    # and the same allergy on the survivor is a duplicate
    with pytest.raises(ClinicalRuleViolation, match="already recorded"):
        store.record_allergy(ctx(NURSE), RecordAllergy(survivor, "Penicillin", "rash", "mild"))
    # but the survivor does not refute an allergy its stream does not hold
    with pytest.raises(ClinicalRuleViolation, match="merged record"):
        store.refute_allergy(ctx(PHYSICIAN, reason="wrong"), RefuteAllergy(survivor, allergy))
    # and its own stream's state is untouched by the view
    assert state(store, survivor).allergies == ()


def test_an_unmerge_needs_the_merge_in_force_and_a_reason_and_gives_each_record_back(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    survivor, merged = pair
    third = registered(store, "MRN-1003")
    with pytest.raises(ClinicalRuleViolation, match="not merged into any"):
        store.unmerge_patients(ctx(ADMIN, reason="x"), UnmergePatients(survivor, merged))
    merge(store, survivor, merged)
    with pytest.raises(ReasonRequired):
        store.unmerge_patients(ctx(ADMIN), UnmergePatients(survivor, merged))
    with pytest.raises(ClinicalRuleViolation, match=f"not {third}"):
        store.unmerge_patients(ctx(ADMIN, reason="x"), UnmergePatients(third, merged))
    # when undone
    result = store.unmerge_patients(
        ctx(ADMIN, reason="different people"), UnmergePatients(survivor, merged)
    )
    # then both streams record it and each record stands alone, taking writes again
    assert result.id == merged
    assert [e.event_type for e in store.events_of(survivor)][-1] == "patient.unmerged"
    assert [e.event_type for e in store.events_of(merged)][-1] == "patient.unmerged"
    assert state(store, merged).merged_into is None and state(store, survivor).merged_ids == ()
    assert store.merge_group(merged) == (merged, ())
    store.record_vitals(ctx(NURSE), RecordVitals(merged, heart_rate=80))
    # and the pair can be merged again (the other way round, even)
    merge(store, merged, survivor)
    assert store.survivor_of(survivor) == merged


def test_a_survivor_can_itself_be_merged_and_takes_what_was_merged_into_it_along(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    first, second = pair
    final = registered(store, "MRN-1003")
    merge(store, second, first)
    merge(store, final, second)
    assert store.survivor_of(first) == final
    survivor, merged = store.merge_group(first)
    assert survivor == final and set(merged) == {first, second}
    # undoing the outer merge leaves the inner one
    store.unmerge_patients(ctx(ADMIN, reason="mistake"), UnmergePatients(final, second))
    assert store.merge_group(first) == (second, (first,))


def test_a_survivor_of_merges_in_force_is_not_erased() -> None:
    survivor = patients.Patient(
        UUID(int=1), 3, "MRN-1", "Okafor", ("Ada",), date(1961, 4, 2), "female",
        merged_ids=(UUID(int=2),),
    )  # fmt: skip
    with pytest.raises(ClinicalRuleViolation, match="unmerge them"):
        patients.erase("GDPR art. 17", "request", survivor)
    assert patients.erase("GDPR art. 17", "request", patients.Patient(
        UUID(int=1), 3, "MRN-1", "Okafor", ("Ada",), date(1961, 4, 2), "female"
    ))  # fmt: skip


def test_the_contract_history_and_replay_know_merges(
    store: ClinicalStore, pair: tuple[UUID, UUID]
) -> None:
    survivor, merged = pair
    assert spec_of("patient.merged").topic.name == "clinical.patients"
    assert spec_of("patient.unmerged").topic.name == "clinical.patients"
    ids = {"survivor_id": str(survivor), "merged_id": str(merged)}
    assert read_payload("patient.merged", 1, ids) == PatientMerged.model_validate(ids)
    with pytest.raises(ValidationError):
        PatientMerged(survivor_id=survivor, merged_id=survivor)
    merge(store, survivor, merged)
    store.record_vitals(ctx(NURSE), RecordVitals(survivor, heart_rate=80))
    # the history folds the merge like any other change of the record
    entries = history_entries(store.event_log.of_patient(merged))
    assert entries[-1]["event_type"] == "patient.merged"
    # an as-of replay of either record reads both records' events, in store order
    for start in (survivor, merged):
        replayed = related_events(store, start)
        positions = [e.position for e in replayed]
        assert positions == sorted(positions)
        assert {e.patient_id for e in replayed} == {survivor, merged}
