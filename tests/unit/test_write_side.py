"""The write side's clinical rules as narratives: given events, when a command, then events."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.access import RecordChartView
from events.commands.medications import (
    ChangeMedication,
    DiscontinueMedication,
    PharmacyDecision,
    Prescribe,
    RecordAdministration,
)
from events.commands.observations import RecordVitals
from events.commands.orders import (
    AmendResult,
    CancelOrder,
    CollectSpecimen,
    PlaceOrder,
    ReceiveResults,
)
from events.commands.patients import (
    ErasePatient,
    RecordAllergy,
    RefuteAllergy,
    RegisterPatient,
    UpdateDemographics,
)
from events.domain.aggregates import medications, orders, patients
from events.domain.aggregates.orders import AnalyteInput
from events.domain.envelope import ClinicalEvent
from events.domain.errors import (
    ClinicalRuleViolation,
    DuplicateMRN,
    ImpossibleValueError,
    NotFound,
    OverrideRequired,
    PatientErasedError,
    ReasonRequired,
    UnknownUnitError,
)
from events.domain.payloads.observations import VitalsRecorded
from events.domain.payloads.patients import PatientRegistered
from tests.unit.conftest import LAB, NURSE, FakeClock, ctx


def registration(mrn: str = "MRN-1001", family: str = "Okonkwo") -> RegisterPatient:
    return RegisterPatient(
        mrn=mrn, family_name=family, given_names=("Ada",), birth_date=date(1961, 4, 2), sex="female"
    )


def registered(store: ClinicalStore, mrn: str = "MRN-1001") -> UUID:
    return store.register_patient(ctx(), registration(mrn)).id


def collected_order(store: ClinicalStore, patient_id: UUID, code: str = "2823-3") -> UUID:
    order_id = store.place_order(ctx(), PlaceOrder(patient_id, code, "Potassium", "stat")).id
    store.collect_specimen(ctx(NURSE), CollectSpecimen(order_id))
    return order_id


POTASSIUM = AnalyteInput("2823-3", "Potassium", 4.1, "mmol/L", 3.5, 5.1)


# -- patients ---------------------------------------------------------------------------
def test_registering_a_patient_stores_one_event_with_actor_and_both_times(
    store: ClinicalStore, clock: FakeClock
) -> None:
    result = store.register_patient(ctx(), registration())

    events = list(store.events_of(result.id))
    assert result.id == store.patient_id_for_mrn("MRN-1001")
    assert result.position == 1
    assert [e.event_type for e in events] == ["patient.registered"]
    assert events[0].actor.role == "physician"
    assert events[0].recorded_at == clock.now
    assert events[0].occurred_at == clock.now
    assert events[0].patient_id == result.id


def test_a_second_registration_of_the_same_mrn_is_refused_with_the_existing_id(
    store: ClinicalStore,
) -> None:
    first = registered(store)

    with pytest.raises(DuplicateMRN) as refused:
        store.register_patient(ctx(), registration(family="Someone Else"))

    assert refused.value.existing_id == first
    assert len(list(store.events_of(first))) == 1


def test_payloads_reject_unknown_fields_such_as_an_ssn() -> None:
    with pytest.raises(ValidationError, match="ssn"):
        PatientRegistered.model_validate({**asdict(registration()), "ssn": "123-45-6789"})


def test_payloads_are_frozen() -> None:
    payload = PatientRegistered(**asdict(registration()))
    with pytest.raises(ValidationError):
        payload.family_name = "Changed"  # type: ignore[misc]


def test_a_birth_date_in_the_future_is_refused(store: ClinicalStore, clock: FakeClock) -> None:
    future = clock.now.date() + timedelta(days=1)
    with pytest.raises(ClinicalRuleViolation, match="future"):
        store.register_patient(ctx(), replace(registration(), birth_date=future))


def test_demographics_update_changes_the_patient_and_a_no_op_is_refused(
    store: ClinicalStore,
) -> None:
    patient_id = registered(store)
    store.update_demographics(ctx(), UpdateDemographics(patient_id, family_name="Okafor"))

    patient = store.load(patient_id, patients.evolve)
    assert patient is not None and patient.family_name == "Okafor"
    with pytest.raises(ClinicalRuleViolation, match="changes nothing"):
        store.update_demographics(ctx(), UpdateDemographics(patient_id, family_name="Okafor"))


def test_allergies_are_recorded_and_refuted_only_with_a_reason(store: ClinicalStore) -> None:
    patient_id = registered(store)
    allergy = RecordAllergy(patient_id, "penicillin", "hives", "moderate")
    allergy_id = store.record_allergy(ctx(NURSE), allergy).id

    with pytest.raises(ReasonRequired):
        store.refute_allergy(ctx(), RefuteAllergy(patient_id, allergy_id))
    store.refute_allergy(
        ctx(reason="tolerated amoxicillin challenge"), RefuteAllergy(patient_id, allergy_id)
    )

    patient = store.load(patient_id, patients.evolve)
    assert patient is not None
    assert patient.active_allergies == ()
    assert patient.allergies[0].refuted


def test_nothing_is_recorded_for_an_unknown_patient(store: ClinicalStore) -> None:
    stranger = uuid4()
    with pytest.raises(NotFound):
        store.place_order(ctx(), PlaceOrder(stranger, "2823-3", "Potassium", "routine"))
    with pytest.raises(NotFound):
        store.prescribe(ctx(), _amoxicillin(stranger))
    with pytest.raises(NotFound):
        store.record_vitals(ctx(NURSE), RecordVitals(stranger, heart_rate=80))
    with pytest.raises(NotFound):
        store.record_allergy(ctx(NURSE), RecordAllergy(stranger, "latex", "rash", "mild"))
    assert store.recorder.max_notification_id() is None


# -- lab orders -------------------------------------------------------------------------
def test_results_before_a_specimen_are_refused(store: ClinicalStore) -> None:
    order = PlaceOrder(registered(store), "2823-3", "Potassium", "stat")
    order_id = store.place_order(ctx(), order).id
    with pytest.raises(ClinicalRuleViolation, match="no specimen"):
        store.receive_results(ctx(LAB), ReceiveResults(order_id, (POTASSIUM,)))


def test_results_are_flagged_from_their_range_and_critical_limits_after_unit_conversion(
    store: ClinicalStore,
) -> None:
    order_id = collected_order(store, registered(store))
    high_meq = AnalyteInput("2823-3", "Potassium", 7.0, "mEq/L", 3.5, 5.1)

    result = store.receive_results(ctx(LAB), ReceiveResults(order_id, (POTASSIUM, high_meq)))

    assert [r["flag"] for r in result.detail["results"]] == ["N", "HH"]
    order = store.load(order_id, orders.evolve)
    assert order is not None and order.status == "resulted"
    assert [r.flag for r in order.results] == ["N", "HH"]


def test_an_unknown_unit_for_an_analyte_with_critical_limits_is_an_error(
    store: ClinicalStore,
) -> None:
    order_id = collected_order(store, registered(store))
    with pytest.raises(UnknownUnitError):
        store.receive_results(
            ctx(LAB), ReceiveResults(order_id, (AnalyteInput("2823-3", "Potassium", 4.0, "mg/dL"),))
        )


def test_no_specimen_after_a_result_and_amendments_keep_the_original(
    store: ClinicalStore,
) -> None:
    order_id = collected_order(store, registered(store))
    received = store.receive_results(ctx(LAB), ReceiveResults(order_id, (POTASSIUM,)))
    result_id = UUID(received.detail["results"][0]["result_id"])

    with pytest.raises(ClinicalRuleViolation, match="no specimen after a result"):
        store.collect_specimen(ctx(NURSE), CollectSpecimen(order_id))
    corrected = AnalyteInput("2823-3", "Potassium", 5.9, "mmol/L", 3.5, 5.1)
    with pytest.raises(ReasonRequired):
        store.amend_result(ctx(LAB), AmendResult(order_id, result_id, corrected))
    amended = store.amend_result(
        ctx(LAB, reason="hemolysed sample re-run"), AmendResult(order_id, result_id, corrected)
    )

    assert amended.detail["flag"] == "H"
    order = store.load(order_id, orders.evolve)
    assert order is not None
    assert order.results[0].value == 5.9 and order.results[0].original_value == 4.1
    history = [e.event_type for e in store.events_of(order_id)]
    assert history == ["order.placed", "specimen.collected", "result.received", "result.amended"]


def test_cancelling_needs_a_reason_and_a_cancelled_order_takes_no_results(
    store: ClinicalStore,
) -> None:
    order_id = collected_order(store, registered(store))
    with pytest.raises(ReasonRequired):
        store.cancel_order(ctx(), CancelOrder(order_id))
    store.cancel_order(ctx(reason="duplicate order"), CancelOrder(order_id))

    with pytest.raises(ClinicalRuleViolation, match="cancelled"):
        store.receive_results(ctx(LAB), ReceiveResults(order_id, (POTASSIUM,)))


def test_a_resulted_order_cannot_be_cancelled(store: ClinicalStore) -> None:
    order_id = collected_order(store, registered(store))
    store.receive_results(ctx(LAB), ReceiveResults(order_id, (POTASSIUM,)))
    with pytest.raises(ClinicalRuleViolation, match="amend"):
        store.cancel_order(ctx(reason="changed my mind"), CancelOrder(order_id))


# -- medications ------------------------------------------------------------------------
def _amoxicillin(
    patient_id: UUID, dose: float = 500, override_reason: str | None = None
) -> Prescribe:
    return Prescribe(
        patient_id,
        drug_code="723",
        drug_name="amoxicillin",
        dose=dose,
        dose_unit="mg",
        route="oral",
        frequency="tid",
        override_reason=override_reason,
    )


def test_prescribing_records_the_prescriber(store: ClinicalStore) -> None:
    patient_id = registered(store)
    medication_id = store.prescribe(ctx(), _amoxicillin(patient_id)).id

    order = store.load(medication_id, medications.evolve)
    assert order is not None
    assert order.status == "active" and order.verification == "pending"
    assert order.prescriber == ctx().actor.user_id


def test_a_dose_above_the_maximum_needs_an_override_reason_which_is_recorded(
    store: ClinicalStore,
) -> None:
    patient_id = registered(store)
    with pytest.raises(OverrideRequired) as refused:
        store.prescribe(ctx(), _amoxicillin(patient_id, 5000))
    assert "exceeds" in refused.value.alerts[0]

    result = store.prescribe(
        ctx(), _amoxicillin(patient_id, 5000, override_reason="ID consult: high-dose regimen")
    )

    event = next(iter(store.events_of(result.id)))
    assert event.payload.override_reason == "ID consult: high-dose regimen"  # type: ignore[attr-defined]
    assert event.payload.alerts_overridden == tuple(refused.value.alerts)  # type: ignore[attr-defined]


def test_a_drug_cross_reacting_with_a_recorded_allergy_is_refused_without_override(
    store: ClinicalStore,
) -> None:
    patient_id = registered(store)
    store.record_allergy(
        ctx(NURSE), RecordAllergy(patient_id, "penicillin", "anaphylaxis", "severe")
    )

    with pytest.raises(OverrideRequired) as refused:
        store.prescribe(ctx(), _amoxicillin(patient_id))
    assert any("penicillin" in alert for alert in refused.value.alerts)
    cephalexin = replace(_amoxicillin(patient_id), drug_code="2231", drug_name="cephalexin")
    with pytest.raises(OverrideRequired):
        store.prescribe(ctx(), cephalexin)


def test_changes_and_discontinuation_need_reasons_and_nothing_follows_discontinuation(
    store: ClinicalStore,
) -> None:
    medication_id = store.prescribe(ctx(), _amoxicillin(registered(store))).id
    with pytest.raises(ReasonRequired):
        store.change_medication(ctx(), ChangeMedication(medication_id, dose=250))
    store.change_medication(ctx(reason="renal function"), ChangeMedication(medication_id, dose=250))
    changed = store.load(medication_id, medications.evolve)
    assert changed is not None
    verify = PharmacyDecision(medication_id, uuid4(), changed.order_change_version, verified=True)
    store.pharmacy_decision(ctx(), verify)
    store.record_administration(ctx(NURSE), RecordAdministration(medication_id, dose=250))
    with pytest.raises(ReasonRequired):
        store.discontinue_medication(ctx(), DiscontinueMedication(medication_id))
    store.discontinue_medication(
        ctx(reason="course complete"), DiscontinueMedication(medication_id)
    )

    with pytest.raises(ClinicalRuleViolation, match="discontinued"):
        store.change_medication(ctx(reason="again"), ChangeMedication(medication_id, dose=500))
    with pytest.raises(ClinicalRuleViolation, match="discontinued"):
        store.record_administration(ctx(NURSE), RecordAdministration(medication_id, dose=250))
    order = store.load(medication_id, medications.evolve)
    assert order is not None
    assert (order.status, order.dose, order.administrations) == ("discontinued", 250, 1)


# -- vitals -----------------------------------------------------------------------------
def test_impossible_vitals_are_refused_and_abnormal_ones_flagged(store: ClinicalStore) -> None:
    patient_id = registered(store)
    with pytest.raises(ImpossibleValueError):
        store.record_vitals(ctx(NURSE), RecordVitals(patient_id, heart_rate=900))
    with pytest.raises(ImpossibleValueError):
        store.record_vitals(ctx(NURSE), RecordVitals(patient_id, temperature_c=60))

    result = store.record_vitals(ctx(NURSE), RecordVitals(patient_id, heart_rate=128, spo2=97))

    assert result.detail["flags"] == {"heart_rate": "H"}


# -- idempotency and encryption ---------------------------------------------------------
def test_a_repeated_idempotency_key_returns_the_original_result_and_stores_nothing(
    store: ClinicalStore,
) -> None:
    patient_id = registered(store)
    vitals = RecordVitals(patient_id, heart_rate=70)
    first = store.record_vitals(ctx(NURSE, idempotency_key="k-1"), vitals)
    head = store.recorder.max_notification_id()

    again = store.record_vitals(ctx(NURSE, idempotency_key="k-1"), vitals)

    assert (again.id, again.position, again.replayed) == (first.id, first.position, True)
    assert store.recorder.max_notification_id() == head


def test_forgetting_a_patient_makes_their_events_unreadable_and_leaves_others_alone(
    store: ClinicalStore,
) -> None:
    erased = registered(store, "MRN-1")
    kept = registered(store, "MRN-2")

    store.forget(ctx(reason="retention expired"), ErasePatient(erased, "retention period ended"))

    with pytest.raises(PatientErasedError):
        store.load(erased, patients.evolve)
    with pytest.raises(PatientErasedError):
        store.record_vitals(ctx(NURSE), RecordVitals(erased, heart_rate=70))
    still_there = store.load(kept, patients.evolve)
    assert still_there is not None and still_there.family_name == "Okonkwo"


def test_changing_only_the_dose_unit_is_checked_against_the_maximum(store: ClinicalStore) -> None:
    medication_id = store.prescribe(ctx(), _amoxicillin(registered(store), 500)).id
    with pytest.raises(OverrideRequired):
        store.change_medication(ctx(reason="typo?"), ChangeMedication(medication_id, dose_unit="g"))


def test_no_event_can_be_written_for_an_erased_patient_even_without_loading_them(
    store: ClinicalStore, clock: FakeClock
) -> None:
    patient_id = registered(store)
    store.forget(ctx(reason="erasure request"), ErasePatient(patient_id, "GDPR art. 17"))
    sneaked_in = ClinicalEvent(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=clock.now,
        event_id=uuid4(),
        event_type="vitals.recorded",
        schema_version=2,
        patient_id=patient_id,
        occurred_at=clock.now,
        actor=NURSE,
        reason=None,
        correlation_id=uuid4(),
        causation_id=None,
        payload=VitalsRecorded(heart_rate=70),
    )
    with pytest.raises(PatientErasedError):
        store.save(sneaked_in)
    with pytest.raises(PatientErasedError):
        store.forget(ctx(reason="again"), ErasePatient(patient_id, "GDPR art. 17"))
    # reads of what is left (metadata) are still audited
    view = RecordChartView(patient_id, "history", "audit", False)
    assert store.record_chart_view(ctx(NURSE), view).position
