"""Giving a dose: only of a verified, active order and at the ordered dose, unless overridden."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID, uuid4

import pytest

from events.application import ClinicalStore
from events.commands.medications import (
    DiscontinueMedication,
    PharmacyDecision,
    Prescribe,
    RecordAdministration,
)
from events.commands.patients import RegisterPatient
from events.domain.aggregates import medications
from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads.medications import MedicationAdministered
from tests.unit.conftest import NURSE, ctx

PHARMACIST_REASON = "interaction with current anticoagulant"
OrderOf = Callable[[ClinicalStore], UUID]


def _prescribed(store: ClinicalStore, dose: float = 500, unit: str = "mg") -> UUID:
    patient_id = store.register_patient(
        ctx(),
        RegisterPatient(
            mrn="MRN-2001",
            family_name="Mensah",
            given_names=("Kofi",),
            birth_date=date(1970, 6, 1),
            sex="male",
        ),
    ).id
    prescription = Prescribe(
        patient_id,
        drug_code="723",
        drug_name="amoxicillin",
        dose=dose,
        dose_unit=unit,
        route="oral",
        frequency="tid",
    )
    return store.prescribe(ctx(), prescription).id


def _pharmacy(store: ClinicalStore, medication_id: UUID, *, verified: bool) -> None:
    order = store.load(medication_id, medications.evolve)
    assert order is not None
    decision = PharmacyDecision(medication_id, uuid4(), order.order_change_version, verified)
    store.pharmacy_decision(ctx(reason=None if verified else PHARMACIST_REASON), decision)


def _discontinued(store: ClinicalStore) -> UUID:
    medication_id = _prescribed(store)
    _pharmacy(store, medication_id, verified=True)
    store.discontinue_medication(
        ctx(reason="course complete"), DiscontinueMedication(medication_id)
    )
    return medication_id


def _rejected(store: ClinicalStore) -> UUID:
    medication_id = _prescribed(store)
    _pharmacy(store, medication_id, verified=False)
    return medication_id


def _verified(store: ClinicalStore) -> UUID:
    medication_id = _prescribed(store)
    _pharmacy(store, medication_id, verified=True)
    return medication_id


def _administrations(store: ClinicalStore, medication_id: UUID) -> list[MedicationAdministered]:
    return [
        e.payload
        for e in store.events_of(medication_id)
        if isinstance(e.payload, MedicationAdministered)
    ]


def _refused(store: ClinicalStore, given: RecordAdministration) -> ClinicalRuleViolation:
    with pytest.raises(ClinicalRuleViolation) as refused:
        store.record_administration(ctx(NURSE), given)
    return refused.value


@pytest.mark.parametrize(
    ("order_of", "why"),
    [
        (_discontinued, "discontinued"),
        (_rejected, "rejected by pharmacy"),
        (_prescribed, "not yet verified"),
    ],
    ids=["discontinued", "rejected", "pending verification"],
)
def test_an_order_not_fit_to_give_is_refused_without_an_override_reason(
    store: ClinicalStore, order_of: OrderOf, why: str
) -> None:
    # given an order that is discontinued, rejected by pharmacy or not yet verified
    medication_id = order_of(store)

    # when the nurse records the ordered dose without a reason
    refused = _refused(store, RecordAdministration(medication_id, dose=500))

    # then it is refused on the override reason, and nothing is recorded
    assert refused.field == "override_reason"
    assert why in str(refused)
    assert _administrations(store, medication_id) == []


@pytest.mark.parametrize(
    "order_of", [_discontinued, _rejected, _prescribed], ids=["discontinued", "rejected", "pending"]
)
def test_an_override_reason_lets_the_dose_be_given_and_is_recorded(
    store: ClinicalStore, order_of: OrderOf
) -> None:
    # given an order that is not fit to give as it stands
    medication_id = order_of(store)

    # when the nurse gives it with a reason
    reason = "first dose before verification (urgent)"
    given = RecordAdministration(medication_id, dose=500, override_reason=f"  {reason} ")
    written = store.record_administration(ctx(NURSE), given)

    # then the administration is recorded with the reason
    [administered] = _administrations(store, medication_id)
    assert administered.administration_id == written.id
    assert administered.override_reason == reason
    order = store.load(medication_id, medications.evolve)
    assert order is not None and order.administrations == 1


def test_the_ordered_dose_of_a_verified_order_needs_no_reason(store: ClinicalStore) -> None:
    # given an order pharmacy verified
    medication_id = _verified(store)

    # when the nurse gives the ordered dose, once in the order's unit and once in grams
    store.record_administration(ctx(NURSE), RecordAdministration(medication_id, dose=500))
    in_grams = RecordAdministration(medication_id, dose=0.5, dose_unit="g")
    store.record_administration(ctx(NURSE), in_grams)

    # then both are recorded, with no override reason
    given = _administrations(store, medication_id)
    assert [(a.dose, a.dose_unit, a.override_reason) for a in given] == [
        (500, "mg", None),
        (0.5, "g", None),
    ]


@pytest.mark.parametrize(
    ("dose", "unit"),
    [(250, "mg"), (5, "g"), (500, "mcg"), (500, "mL")],
    ids=["less", "more after conversion", "micrograms", "unconvertible unit"],
)
def test_a_dose_different_from_the_order_needs_a_reason(
    store: ClinicalStore, dose: float, unit: str
) -> None:
    # given a verified order of 500 mg
    medication_id = _verified(store)

    # when the nurse records another dose without a reason
    refused = _refused(store, RecordAdministration(medication_id, dose=dose, dose_unit=unit))

    # then it is refused, naming both doses
    assert refused.field == "override_reason"
    assert f"dose {dose:g} {unit} differs from the ordered 500 mg" in str(refused)
    assert _administrations(store, medication_id) == []

    # and with a reason it is recorded with that reason
    reason = "half dose: vomited after the last one, per physician"
    overridden = RecordAdministration(
        medication_id, dose=dose, dose_unit=unit, override_reason=reason
    )
    store.record_administration(ctx(NURSE), overridden)
    [administered] = _administrations(store, medication_id)
    assert (administered.dose, administered.override_reason) == (dose, reason)


def test_a_reason_given_for_a_standard_dose_is_not_recorded_as_an_override(
    store: ClinicalStore,
) -> None:
    # given a verified order
    medication_id = _verified(store)

    # when the nurse adds a reason to the ordered dose
    given = RecordAdministration(medication_id, dose=500, override_reason="just in case")
    store.record_administration(ctx(NURSE), given)

    # then nothing was overridden, so no override reason is recorded
    [administered] = _administrations(store, medication_id)
    assert administered.override_reason is None
