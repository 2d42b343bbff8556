"""Narratives of the clinical-safety findings: dose limits by route, per 24 h and by age;
allergy status (active, inactive, refuted), criticality and "no known drug allergies"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest

from events.application import ClinicalStore
from events.commands.medications import ChangeMedication, PharmacyDecision, Prescribe
from events.commands.patients import (
    ChangeAllergyStatus,
    RecordAllergy,
    RecordNoKnownAllergies,
    RefuteAllergy,
    RegisterPatient,
)
from events.domain.aggregates import medications, patients
from events.domain.contract import read_payload
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    ImpossibleValueError,
    OverrideRequired,
    ReasonRequired,
)
from events.domain.payloads.patients import AllergyRecorded
from events.domain.rules.dose_limits import age_in_years, dose_limits, doses_per_day
from events.domain.rules.medications import NOT_SCREENED, dose_alerts, dose_gaps
from events.store.history import EVOLVE_BY_TYPE
from tests.unit.conftest import NURSE, ctx

MORPHINE = "7052"
ACETAMINOPHEN = "161"
CITALOPRAM = "2556"
CODEINE = "2670"
AMOXICILLIN = "723"


def _patient(store: ClinicalStore, born: date, mrn: str = "MRN-5001") -> UUID:
    registration = RegisterPatient(mrn, "Ndiaye", ("Awa",), born, "female")
    return store.register_patient(ctx(), registration).id


def _rx(
    patient_id: UUID, code: str, name: str, dose: float, route: str, frequency: str
) -> Prescribe:
    return Prescribe(patient_id, code, name, dose, "mg", route, frequency)


def _state(store: ClinicalStore, patient_id: UUID) -> patients.Patient:
    state = store.load(patient_id, patients.evolve)
    assert state is not None
    return state


# --- dose limits: the pure rules ---------------------------------------------------------


def test_iv_morphine_30_mg_exceeds_the_iv_maximum_while_oral_30_mg_is_within_its_own() -> None:
    # given morphine: 30 mg oral immediate release, 10 mg per IV dose (Hospira label)
    # when 30 mg is ordered by each route
    iv = dose_alerts(MORPHINE, 30.0, "mg", route="iv", frequency="q4h")
    oral = dose_alerts(MORPHINE, 30.0, "mg", route="oral", frequency="q4h")
    # then only the IV order alerts, naming the route
    assert iv == [
        "dose 30 mg exceeds the maximum single dose of 10 mg for morphine by the iv route"
    ]
    assert oral == []
    assert dose_alerts(MORPHINE, 10.0, "mg", route="iv", frequency="q4h") == []


def test_acetaminophen_1_g_every_4_hours_is_6_g_a_day_and_alerts_every_6_hours_does_not() -> None:
    # given acetaminophen: 1000 mg per dose, 4000 mg per day from all routes (OFIRMEV label)
    q4h = dose_alerts(ACETAMINOPHEN, 1000.0, "mg", route="oral", frequency="q4h")
    q6h = dose_alerts(ACETAMINOPHEN, 1.0, "g", route="iv", frequency="q6h")
    # then 6 doses a day are over the daily maximum, 4 are exactly at it
    assert q4h == [
        "daily dose 6000 mg (1000 mg q4h: 6 doses in 24 h) exceeds the maximum daily dose "
        "of 4000 mg for acetaminophen"
    ]
    assert q6h == []
    as_needed = dose_alerts(ACETAMINOPHEN, 1000.0, "mg", route="oral", frequency="q4h prn")
    assert [alert.split(" (")[0] for alert in as_needed] == ["daily dose 6000 mg"]


@pytest.mark.parametrize(
    ("frequency", "per_day"),
    [
        ("q4h", 6),
        ("q6h", 4),
        ("q5h", 5),
        ("q8h", 3),
        ("q48h", 1),
        ("bid", 2),
        ("tid", 3),
        ("qid", 4),
        ("daily", 1),
        ("at bedtime", 1),
        ("q6h prn", 4),
        ("prn", None),
    ],
)
def test_a_frequency_gives_the_most_doses_in_any_24_hours(frequency: str, per_day: int) -> None:
    assert doses_per_day(frequency) == per_day


def test_every_0_hours_is_impossible() -> None:
    with pytest.raises(ImpossibleValueError) as refused:
        doses_per_day("q0h")
    assert refused.value.field == "frequency"


def test_citalopram_40_mg_a_day_alerts_from_age_60_not_at_40() -> None:
    # given citalopram: 40 mg a day, 20 mg a day for patients over 60 (CELEXA label)
    older = dose_alerts(CITALOPRAM, 40.0, "mg", route="oral", frequency="daily", age=70)
    younger = dose_alerts(CITALOPRAM, 40.0, "mg", route="oral", frequency="daily", age=40)
    # then the age-specific limit applies to the 70-year-old only
    assert older == [
        "daily dose 40 mg (40 mg daily: 1 dose in 24 h) exceeds the maximum daily dose of "
        "20 mg for citalopram from age 60"
    ]
    assert younger == []
    assert dose_alerts(CITALOPRAM, 20.0, "mg", route="oral", frequency="daily", age=60) == []
    assert dose_alerts(CITALOPRAM, 40.0, "mg", route="oral", frequency="bid", age=40) != []


def test_age_counts_completed_years_on_the_clinical_date() -> None:
    assert age_in_years(date(1966, 3, 15), date(2026, 3, 14)) == 59
    assert age_in_years(date(1966, 3, 15), date(2026, 3, 15)) == 60
    assert age_in_years(date(1964, 2, 29), date(2024, 2, 28)) == 59


def test_a_prn_order_and_an_unknown_age_are_marked_not_screened() -> None:
    # given codeine "prn" (no interval: the daily total depends on the doses given)
    prn = dose_gaps(CODEINE, "prn", "oral", age_known=True)
    assert len(prn) == 1
    assert prn[0].startswith(NOT_SCREENED)
    assert "360 mg" in prn[0]
    assert dose_gaps(CODEINE, "q4h prn", "oral", age_known=True) == []
    # and citalopram for a patient whose birth date is not known
    unknown_age = dose_gaps(CITALOPRAM, "daily", "oral", age_known=False)
    assert unknown_age == [
        f"{NOT_SCREENED}the limit of citalopram from age 60 without the patient's age"
    ]


def test_every_dose_limit_names_its_source() -> None:
    limits = [limit for entries in dose_limits().values() for limit in entries]
    assert len(limits) >= 10
    assert all("FDA" in limit.source for limit in limits)


# --- dose limits: the write side ----------------------------------------------------------


def test_iv_morphine_30_mg_is_refused_without_an_override_reason(store: ClinicalStore) -> None:
    patient_id = _patient(store, date(1980, 1, 1))
    iv = _rx(patient_id, MORPHINE, "morphine", 30.0, "iv", "q4h")
    with pytest.raises(OverrideRequired) as refused:
        store.prescribe(ctx(), iv)
    assert "by the iv route" in refused.value.alerts[0]
    store.prescribe(ctx(), replace(iv, override_reason="opioid-tolerant: palliative care"))
    store.prescribe(ctx(), replace(iv, route="oral"))


def test_a_frequency_change_that_exceeds_the_daily_maximum_needs_an_override(
    store: ClinicalStore,
) -> None:
    # given acetaminophen 1 g every 6 hours (4 g a day, accepted)
    patient_id = _patient(store, date(1980, 1, 1))
    rx = _rx(patient_id, ACETAMINOPHEN, "acetaminophen", 1000.0, "oral", "q6h")
    medication_id = store.prescribe(ctx(), rx).id
    # when the frequency alone changes to every 4 hours
    change = ChangeMedication(medication_id, frequency="q4h")
    with pytest.raises(OverrideRequired) as refused:
        store.change_medication(ctx(reason="pain uncontrolled"), change)
    # then the daily total is what is refused
    assert refused.value.alerts[0].startswith("daily dose 6000 mg")
    with pytest.raises(OverrideRequired):
        store.prescribe(ctx(), replace(rx, frequency="q4h"))


def test_citalopram_is_checked_at_the_patients_age_on_the_prescriptions_clinical_date(
    store: ClinicalStore,
) -> None:
    # given a patient who turned 60 on 2026-02-27 (the clock reads 2026-03-01)
    patient_id = _patient(store, date(1966, 2, 27))
    rx = _rx(patient_id, CITALOPRAM, "citalopram", 40.0, "oral", "daily")
    # when 40 mg a day is prescribed now, then it is refused
    with pytest.raises(OverrideRequired) as refused:
        store.prescribe(ctx(), rx)
    assert "from age 60" in refused.value.alerts[0]
    # but the same prescription dated the day before the birthday was within the limit
    before = datetime(2026, 2, 26, 9, 0, tzinfo=UTC)
    store.prescribe(ctx(occurred_at=before), rx)
    # and a 40-year-old gets it without an alert
    younger = _patient(store, date(1986, 1, 1), "MRN-5002")
    store.prescribe(ctx(), replace(rx, patient_id=younger))


# --- allergies: status, criticality, no known allergies -----------------------------------


def test_criticality_is_recorded_and_older_allergies_read_without_one(
    store: ClinicalStore,
) -> None:
    patient_id = _patient(store, date(1980, 1, 1))
    allergy = RecordAllergy(patient_id, "penicillin", "anaphylaxis", "severe", criticality="high")
    store.record_allergy(ctx(NURSE), allergy)
    assert _state(store, patient_id).allergies[0].criticality == "high"
    old = {"allergy_id": str(uuid4()), "substance": "latex", "reaction": "rash", "severity": "mild"}
    payload = read_payload("allergy.recorded", 1, old)
    assert isinstance(payload, AllergyRecorded)
    assert payload.criticality is None
    with pytest.raises(ValueError, match="criticality"):
        AllergyRecorded.model_validate({**old, "criticality": "severe"})


def test_inactive_and_refuted_allergies_do_not_screen_and_a_reactivated_one_does(
    store: ClinicalStore,
) -> None:
    patient_id = _patient(store, date(1980, 1, 1))
    allergy = RecordAllergy(patient_id, "penicillin", "hives", "moderate")
    allergy_id = store.record_allergy(ctx(NURSE), allergy).id
    amoxicillin = _rx(patient_id, AMOXICILLIN, "amoxicillin", 500.0, "oral", "tid")
    with pytest.raises(OverrideRequired):
        store.prescribe(ctx(), amoxicillin)
    # when the allergy is made inactive (with a reason) the drug is prescribed without an alert
    inactive = ChangeAllergyStatus(patient_id, allergy_id, "inactive")
    with pytest.raises(ReasonRequired):
        store.change_allergy_status(ctx(NURSE), inactive)
    store.change_allergy_status(ctx(NURSE, reason="tolerated graded challenge"), inactive)
    assert _state(store, patient_id).allergies[0].status == "inactive"
    store.prescribe(ctx(), amoxicillin)
    # made active again, it screens again
    active = ChangeAllergyStatus(patient_id, allergy_id, "active")
    store.change_allergy_status(ctx(NURSE, reason="hives on re-exposure"), active)
    with pytest.raises(OverrideRequired):
        store.prescribe(ctx(), amoxicillin)
    # refuted, it never screens and its status no longer changes
    store.refute_allergy(ctx(reason="entered in error"), RefuteAllergy(patient_id, allergy_id))
    store.prescribe(ctx(), amoxicillin)
    with pytest.raises(ClinicalRuleViolation, match="refuted"):
        store.change_allergy_status(ctx(NURSE, reason="again"), active)
    assert [a.status for a in _state(store, patient_id).allergies] == ["refuted"]


def test_a_status_that_does_not_change_or_an_active_duplicate_is_refused(
    store: ClinicalStore,
) -> None:
    patient_id = _patient(store, date(1980, 1, 1))
    first = store.record_allergy(ctx(NURSE), RecordAllergy(patient_id, "latex", "rash", "mild")).id
    with pytest.raises(ClinicalRuleViolation, match="already active"):
        store.change_allergy_status(
            ctx(NURSE, reason="check"), ChangeAllergyStatus(patient_id, first, "active")
        )
    store.change_allergy_status(
        ctx(NURSE, reason="resolved"), ChangeAllergyStatus(patient_id, first, "inactive")
    )
    store.record_allergy(ctx(NURSE), RecordAllergy(patient_id, "latex", "hives", "moderate"))
    with pytest.raises(ClinicalRuleViolation, match="already recorded"):
        store.change_allergy_status(
            ctx(NURSE, reason="back"), ChangeAllergyStatus(patient_id, first, "active")
        )


def test_no_known_allergies_is_distinct_from_none_recorded_and_ends_with_an_allergy(
    store: ClinicalStore,
) -> None:
    patient_id = _patient(store, date(1980, 1, 1))
    assert not _state(store, patient_id).no_known_allergies
    store.record_no_known_allergies(ctx(NURSE), RecordNoKnownAllergies(patient_id))
    assert _state(store, patient_id).no_known_allergies
    allergy = RecordAllergy(patient_id, "sulfa", "rash", "mild", criticality="low")
    allergy_id = store.record_allergy(ctx(NURSE), allergy).id
    assert not _state(store, patient_id).no_known_allergies
    # refused while an allergy is active; stated again once it is inactive
    with pytest.raises(ClinicalRuleViolation, match="active allergies"):
        store.record_no_known_allergies(ctx(NURSE), RecordNoKnownAllergies(patient_id))
    store.change_allergy_status(
        ctx(NURSE, reason="outgrown"), ChangeAllergyStatus(patient_id, allergy_id, "inactive")
    )
    store.record_no_known_allergies(ctx(NURSE), RecordNoKnownAllergies(patient_id))
    assert _state(store, patient_id).no_known_allergies
    assert {"allergy.status_changed", "allergy.none_known"} <= set(EVOLVE_BY_TYPE)


def test_a_verified_order_is_reviewed_again_through_another_item_never_the_same_one(
    store: ClinicalStore,
) -> None:
    # given an order verified through its first item
    patient_id = _patient(store, date(1980, 1, 1))
    rx = _rx(patient_id, AMOXICILLIN, "amoxicillin", 500.0, "oral", "tid")
    medication_id = store.prescribe(ctx(), rx).id
    first = uuid4()
    store.pharmacy_decision(ctx(), PharmacyDecision(medication_id, first, 1, verified=True))
    with pytest.raises(ConflictError):
        store.pharmacy_decision(ctx(), PharmacyDecision(medication_id, first, 1, verified=True))
    # when a re-screen item (a new penicillin allergy) rejects it, then it is rejected
    rescreen = PharmacyDecision(medication_id, uuid4(), 1, verified=False)
    store.pharmacy_decision(ctx(reason="new penicillin allergy"), rescreen)
    order = store.load(medication_id, medications.evolve)
    assert order is not None
    assert order.verification == "rejected"
    # and a rejected order stays rejected
    with pytest.raises(ConflictError):
        store.pharmacy_decision(ctx(), PharmacyDecision(medication_id, uuid4(), 1, verified=True))
