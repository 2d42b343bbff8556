"""Orders, prescriptions and results in their encounter; placer numbers and the ordering
physician; body weight and height; per-kg dose limits at the latest weight."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.commands.encounters import EndEncounter, StartEncounter
from events.commands.medications import Prescribe, RecordAdministration
from events.commands.observations import RecordObservation
from events.commands.orders import (
    AnalyteInput,
    CollectSpecimen,
    DuplicatePlacerNumber,
    PlaceOrder,
    ReceiveResults,
)
from events.commands.patients import RegisterPatient
from events.commands.users import DeactivateUser
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import (
    ClinicalRuleViolation,
    ImpossibleValueError,
    OverrideRequired,
    UnknownUnitError,
)
from events.domain.payloads import medications as m
from events.domain.payloads import observations as obs
from events.domain.payloads import orders as o
from events.domain.rules.dose_limits import weight_dose_alerts, weight_gaps, weight_limits
from tests.unit.conftest import ADMIN, LAB, NURSE, FakeClock, account, ctx

ACETAMINOPHEN = "161"
MORPHINE = "7052"
GLUCOSE = AnalyteInput("2345-7", "Glucose", 90.0, "mg/dL", 70.0, 99.0)


def registered(store: ClinicalStore, mrn: str = "MRN-7001") -> UUID:
    cmd = RegisterPatient(mrn, "Haddad", ("Lina",), date(1979, 6, 3), "female")
    return store.register_patient(ctx(ADMIN), cmd).id


@pytest.fixture
def doctor(store: ClinicalStore) -> UUID:
    return account(store, "dr.grey", "physician")


def admitted(store: ClinicalStore, patient_id: UUID, attending: UUID) -> UUID:
    cmd = StartEncounter(patient_id, "inpatient", "Medicine", attending)
    return store.start_encounter(ctx(ADMIN), cmd).id


def payload_of(store: ClinicalStore, stream: UUID, version: int = 1) -> object:
    return list(store.events_of(stream))[version - 1].payload


def weighed(store: ClinicalStore, patient_id: UUID, value: float, unit: str = "kg") -> UUID:
    cmd = RecordObservation(patient_id, "body_weight", value, unit)
    return store.record_observation(ctx(NURSE), cmd).id


def rx(patient_id: UUID, code: str, dose: float, route: str, frequency: str) -> Prescribe:
    name = {ACETAMINOPHEN: "acetaminophen", MORPHINE: "morphine"}[code]
    return Prescribe(patient_id, code, name, dose, "mg", route, frequency)


# --- encounters ---------------------------------------------------------------------------


def test_orders_prescriptions_and_results_name_the_open_encounter(
    store: ClinicalStore, doctor: UUID, clock: FakeClock
) -> None:
    # given a patient in an open encounter
    patient = registered(store)
    encounter = admitted(store, patient, doctor)
    # when an order is placed, a drug prescribed and the order resulted
    order = store.place_order(ctx(), PlaceOrder(patient, "2345-7", "Glucose", "routine")).id
    medication = store.prescribe(ctx(), rx(patient, ACETAMINOPHEN, 500, "oral", "q6h")).id
    store.collect_specimen(ctx(NURSE), CollectSpecimen(order))
    store.receive_results(ctx(LAB), ReceiveResults(order, (GLUCOSE,)))
    # then each event names the encounter
    placed = payload_of(store, order)
    assert isinstance(placed, o.OrderPlaced) and placed.encounter_id == encounter
    prescribed = payload_of(store, medication)
    assert isinstance(prescribed, m.MedicationPrescribed)
    assert prescribed.encounter_id == encounter
    received = payload_of(store, order, 3)
    assert isinstance(received, o.ResultReceived) and received.encounter_id == encounter
    assert store.order(order).encounter_id == encounter


def test_after_discharge_new_orders_have_no_encounter_and_late_results_keep_the_orders(
    store: ClinicalStore, doctor: UUID
) -> None:
    # given an order placed during a stay, and the patient then discharged
    patient = registered(store)
    encounter = admitted(store, patient, doctor)
    order = store.place_order(ctx(), PlaceOrder(patient, "2345-7", "Glucose", "routine")).id
    store.collect_specimen(ctx(NURSE), CollectSpecimen(order))
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter, "home"))
    # when its result arrives after discharge, then it belongs to the stay that ordered it
    store.receive_results(ctx(LAB), ReceiveResults(order, (GLUCOSE,)))
    received = payload_of(store, order, 3)
    assert isinstance(received, o.ResultReceived) and received.encounter_id == encounter
    # and an order placed now, with no encounter open, names none
    later = store.place_order(ctx(), PlaceOrder(patient, "718-7", "Hemoglobin", "routine")).id
    placed = payload_of(store, later)
    assert isinstance(placed, o.OrderPlaced) and placed.encounter_id is None


# --- placer numbers and the ordering physician ---------------------------------------------


def test_a_placer_number_names_one_order_for_good(store: ClinicalStore) -> None:
    # given no order with placer number PN-1
    patient = registered(store)
    assert store.order_for_placer("PN-1") is None
    # when an order is placed with it
    cmd = PlaceOrder(patient, "2345-7", "Glucose", "stat", placer_number="PN-1")
    order_id = store.place_order(ctx(), cmd).id
    # then its id is the number's keyed id, the payload keeps the number, and it is found
    assert order_id == store.keyed_id(b"order-placer:PN-1")
    assert store.order_for_placer("PN-1") == order_id
    assert store.order(order_id).placer_number == "PN-1"
    placed = payload_of(store, order_id)
    assert isinstance(placed, o.OrderPlaced) and placed.placer_number == "PN-1"
    # and a second placement with the number is refused, naming the order to its patient
    with pytest.raises(DuplicatePlacerNumber) as again:
        store.place_order(ctx(), cmd)
    assert again.value.existing_id == order_id
    # but not to another patient's placement
    other = registered(store, "MRN-7002")
    with pytest.raises(DuplicatePlacerNumber) as stranger:
        store.place_order(ctx(), replace(cmd, patient_id=other))
    assert stranger.value.existing_id is None
    assert len(list(store.events_of(order_id))) == 1


def test_a_placement_resent_with_its_idempotency_key_is_answered_with_the_first(
    store: ClinicalStore,
) -> None:
    patient = registered(store)
    cmd = PlaceOrder(patient, "2345-7", "Glucose", "stat", placer_number="PN-9")
    first = store.place_order(ctx(idempotency_key="k-1"), cmd)
    again = store.place_order(ctx(idempotency_key="k-1"), cmd)
    assert again.replayed and again.id == first.id


def test_an_explicit_ordering_physician_or_prescriber_must_be_an_active_physician(
    store: ClinicalStore, doctor: UUID
) -> None:
    # given a nurse, a retired physician and an active one
    patient = registered(store)
    nurse = account(store, "n.joy", "nurse")
    retired = account(store, "dr.old", "physician")
    store.deactivate_user(ctx(ADMIN, reason="retired in 2025"), DeactivateUser(retired))
    order = PlaceOrder(patient, "2345-7", "Glucose", "routine")
    # when the HL7 interface (the system actor) names the physician, then it is recorded
    placed_id = store.place_order(ctx(SYSTEM_ACTOR), replace(order, ordering_physician=doctor)).id
    assert store.order(placed_id).ordering_physician == doctor
    prescription = replace(rx(patient, ACETAMINOPHEN, 500, "oral", "q6h"), prescriber=doctor)
    medication = store.prescribe(ctx(SYSTEM_ACTOR), prescription).id
    assert store.medication(medication).prescriber == doctor
    # and a nurse, a deactivated physician or nobody at all is refused
    for wrong in (nurse, retired, UUID(int=7)):
        with pytest.raises(ClinicalRuleViolation) as refused:
            store.place_order(ctx(), replace(order, ordering_physician=wrong))
        assert refused.value.field == "ordering_physician"
        with pytest.raises(ClinicalRuleViolation) as refused:
            store.prescribe(ctx(), replace(prescription, prescriber=wrong))
        assert refused.value.field == "prescriber"
    # and without one the actor is the ordering physician, as before
    plain = store.place_order(ctx(), order).id
    assert store.order(plain).ordering_physician == ctx().actor.user_id


# --- body weight and height ----------------------------------------------------------------


def test_weight_and_height_are_stored_in_kg_and_cm_with_what_was_measured(
    store: ClinicalStore, doctor: UUID
) -> None:
    patient = registered(store)
    encounter = admitted(store, patient, doctor)
    # when a weight of 154 lb and a height of 1.68 m are recorded
    weight = store.record_observation(
        ctx(NURSE), RecordObservation(patient, "body_weight", 154, "lb")
    )
    store.record_observation(ctx(NURSE), RecordObservation(patient, "body_height", 1.68, "m"))
    # then they are stored normalised, coded, with the original and the encounter
    assert weight.detail == {"kind": "body_weight", "value": 69.853225, "unit": "kg"}
    [first, second] = list(store.events_of(store.body_measurements_id(patient)))
    assert isinstance(first.payload, obs.ObservationRecorded)
    assert first.payload.observation_id == weight.id
    assert (first.payload.code, first.payload.original_value) == ("29463-7", 154)
    assert first.payload.original_unit == "lb" and first.payload.encounter_id == encounter
    assert isinstance(second.payload, obs.ObservationRecorded)
    assert (second.payload.code, second.payload.value, second.payload.unit) == (
        "8302-2",
        168.0,
        "cm",
    )
    measured = store.body_measurements(patient)
    assert measured is not None and measured.height is not None
    assert measured.weight_kg == 69.853225 and measured.height.value == 168.0


@pytest.mark.parametrize(
    ("kind", "value", "unit", "error"),
    [
        ("body_weight", 0.1, "kg", ImpossibleValueError),
        ("body_weight", 700, "kg", ImpossibleValueError),
        ("body_weight", 70000, "lb", ImpossibleValueError),
        ("body_height", 300, "cm", ImpossibleValueError),
        ("body_height", 19, "cm", ImpossibleValueError),
        ("body_height", 170, "kg", UnknownUnitError),
        ("body_weight", 70, "cm", UnknownUnitError),
        ("body_weight", -3, "kg", ImpossibleValueError),
    ],
)
def test_implausible_values_and_units_of_the_other_measure_are_refused(
    store: ClinicalStore, kind: str, value: float, unit: str, error: type[Exception]
) -> None:
    patient = registered(store)
    with pytest.raises(error):
        store.record_observation(ctx(NURSE), RecordObservation(patient, kind, value, unit))  # type: ignore[arg-type]
    assert store.body_measurements(patient) is None


def test_the_latest_weight_is_the_latest_measured_not_the_latest_recorded(
    store: ClinicalStore, clock: FakeClock
) -> None:
    patient = registered(store)
    weighed(store, patient, 60)
    # when a weight taken yesterday is entered now, then today's stays the latest
    yesterday = clock.now - timedelta(days=1)
    store.record_observation(
        ctx(NURSE, occurred_at=yesterday), RecordObservation(patient, "body_weight", 80, "kg")
    )
    assert store.latest_weight_kg(patient) == 60


# --- per-kg dose limits ---------------------------------------------------------------------


def test_every_weight_limit_names_its_source() -> None:
    limits = [limit for entries in weight_limits().values() for limit in entries]
    assert {ACETAMINOPHEN, MORPHINE} <= set(weight_limits())
    assert all("FDA" in limit.source and "mg/kg" in limit.source for limit in limits)


def test_acetaminophen_per_kg_limits_apply_under_50_kg_only() -> None:
    alerts = weight_dose_alerts(
        ACETAMINOPHEN, 1000, "mg", route="oral", frequency="q6h", weight_kg=40
    )
    assert alerts == [
        "dose 1000 mg exceeds the maximum single dose of 15 mg/kg (600 mg at 40 kg) "
        "for acetaminophen under 50 kg",
        "daily dose 4000 mg (1000 mg q6h) exceeds the maximum daily dose of 75 mg/kg "
        "(3000 mg at 40 kg) for acetaminophen under 50 kg",
    ]
    assert (
        weight_dose_alerts(ACETAMINOPHEN, 600, "mg", route="iv", frequency="q6h", weight_kg=40)
        == []
    )
    assert (
        weight_dose_alerts(ACETAMINOPHEN, 1, "g", route="oral", frequency="q6h", weight_kg=70) == []
    )


def test_morphine_per_kg_limit_is_for_the_iv_route() -> None:
    assert weight_dose_alerts(MORPHINE, 10, "mg", route="iv", frequency="q4h", weight_kg=70) == [
        "dose 10 mg exceeds the maximum single dose of 0.1 mg/kg (7 mg at 70 kg) "
        "for morphine by the iv route"
    ]
    assert weight_dose_alerts(MORPHINE, 10, "mg", route="oral", frequency="q4h", weight_kg=70) == []
    assert weight_gaps(MORPHINE, "oral", None) == []
    assert weight_gaps(MORPHINE, "iv", 70.0) == []
    [note] = weight_gaps(MORPHINE, "iv", None)
    assert note.startswith("not screened: ") and "body weight" in note


def test_a_prescription_is_checked_at_the_latest_weight_and_records_it(
    store: ClinicalStore,
) -> None:
    # given a patient weighing 40 kg
    patient = registered(store)
    weighed(store, patient, 40)
    prescription = rx(patient, ACETAMINOPHEN, 1000, "oral", "q6h")
    # when 1 g every 6 hours is prescribed, then it needs an override reason
    with pytest.raises(OverrideRequired) as refused:
        store.prescribe(ctx(), prescription)
    assert "15 mg/kg" in refused.value.alerts[0]
    # and 500 mg is accepted, recorded with the weight it was checked at
    accepted = store.prescribe(ctx(), replace(prescription, dose=500)).id
    payload = payload_of(store, accepted)
    assert isinstance(payload, m.MedicationPrescribed) and payload.weight_kg == 40
    assert payload.alerts_overridden == ()


def test_without_a_weight_a_per_kg_drug_is_prescribed_with_a_not_screened_note(
    store: ClinicalStore,
) -> None:
    patient = registered(store)
    medication = store.prescribe(ctx(), rx(patient, MORPHINE, 5, "iv", "q4h"))
    payload = payload_of(store, medication.id)
    assert isinstance(payload, m.MedicationPrescribed) and payload.weight_kg is None
    [note] = payload.alerts_overridden
    assert note.startswith("not screened: the per-kg dose limits of morphine")
    assert medication.detail == {"alerts_overridden": [note]}


def test_an_administration_is_checked_at_the_weight_recorded_since(
    store: ClinicalStore,
) -> None:
    # given IV morphine 7 mg prescribed at 70 kg, verified aside
    patient = registered(store)
    weighed(store, patient, 70)
    medication = store.prescribe(ctx(), rx(patient, MORPHINE, 7, "iv", "q4h")).id
    # when the patient is weighed again at 50 kg and the ordered 7 mg is given
    weighed(store, patient, 50)
    given = RecordAdministration(medication, 7, override_reason=None)
    with pytest.raises(OverrideRequired) as refused:
        store.record_administration(ctx(NURSE), given)
    # then the per-kg limit at the new weight is among what needs a reason
    assert any("0.1 mg/kg (5 mg at 50 kg)" in alert for alert in refused.value.alerts)
