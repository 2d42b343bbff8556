"""The medication order aggregate: prescribed → changed → discontinued, with administrations.

Prescribing and dose or frequency changes check the dose against the drug's limits (single
dose by route, dose x frequency per 24 h, age-specific limits at the patient's age on the
prescription's clinical date) and the drug against the patient's active allergies (same
substance or a cross-reacting class; inactive and refuted allergies do not screen), and,
for a drug with per-kg limits, against the patient's latest recorded body weight (without
one, a "not screened" note is recorded instead; administrations are checked again at the
weight then). A check that fires refuses the command unless it carries an override reason,
which is recorded with the alerts it overrode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.aggregates.patients import Patient
from events.domain.envelope import ClinicalEvent
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    OverrideRequired,
    UnknownUnitError,
)
from events.domain.payloads import medications as m
from events.domain.rules.dose_limits import (
    age_in_years,
    weight_dose_alerts,
    weight_gaps,
    weight_limits,
)
from events.domain.rules.medications import allergy_alerts, dose_alerts, dose_gaps, screening_gaps
from events.domain.rules.reference import unit_table
from events.domain.rules.units import canonical_unit

Verification = Literal["pending", "verified", "rejected"]

# A given dose this close to the ordered one (after unit conversion) is the ordered dose.
_DOSE_REL_TOL = 1e-9


@dataclass(frozen=True)
class MedicationOrder:
    """A medication order's current state."""

    id: UUID
    version: int
    patient_id: UUID
    drug_code: str
    drug_name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str
    prescriber: UUID
    status: Literal["active", "discontinued"] = "active"
    verification: Verification = "pending"
    administrations: int = 0
    order_change_version: int = 1  # the version of the last prescription or change
    decided_item: UUID | None = None  # the pharmacy item of the last decision


def evolve(state: MedicationOrder | None, event: ClinicalEvent) -> MedicationOrder:
    payload = event.payload
    if isinstance(payload, m.MedicationPrescribed):
        if event.patient_id is None:
            raise ValueError("medication.prescribed without a patient")
        return MedicationOrder(
            id=event.originator_id,
            version=event.originator_version,
            patient_id=event.patient_id,
            drug_code=payload.drug_code,
            drug_name=payload.drug_name,
            dose=payload.dose,
            dose_unit=payload.dose_unit,
            route=payload.route,
            frequency=payload.frequency,
            prescriber=payload.prescriber,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before medication.prescribed")
    state = replace(state, version=event.originator_version)
    if isinstance(payload, m.MedicationChanged):
        return replace(
            state,
            dose=payload.dose if payload.dose is not None else state.dose,
            dose_unit=payload.dose_unit or state.dose_unit,
            frequency=payload.frequency or state.frequency,
            verification="pending",
            order_change_version=event.originator_version,
        )
    if isinstance(payload, m.MedicationDiscontinued):
        return replace(state, status="discontinued")
    if isinstance(payload, m.MedicationAdministered):
        return replace(state, administrations=state.administrations + 1)
    if isinstance(payload, m.PharmacyVerified):
        return replace(state, verification="verified", decided_item=payload.item_id)
    if isinstance(payload, m.PharmacyRejected):
        return replace(state, verification="rejected", decided_item=payload.item_id)
    raise ValueError(f"medication stream cannot apply {event.event_type}")


def _dose_alerts(
    patient: Patient,
    on: date,
    code: str,
    dose: float,
    unit: str,
    route: str,
    frequency: str,
    weight_kg: float | None = None,
) -> list[str]:
    age = age_in_years(patient.birth_date, on)
    return dose_alerts(
        code, dose, unit, route=route, frequency=frequency, age=age
    ) + weight_dose_alerts(code, dose, unit, route=route, frequency=frequency, weight_kg=weight_kg)


def _overridable(alerts: list[str], override_reason: str | None) -> str | None:
    if not alerts:
        return None
    if override_reason is None or not override_reason.strip():
        raise OverrideRequired(
            "refused by safety checks: "
            + "; ".join(alerts)
            + " (resend with an override_reason to proceed)",
            alerts,
        )
    return override_reason.strip()


def prescribe(
    patient: Patient, request: m.MedicationPrescribed, on: date, weight_kg: float | None = None
) -> m.MedicationPrescribed:
    """The prescription with its alerts; ``OverrideRequired`` if one needs an override reason.

    ``on`` is the prescription's clinical date (the patient's age for age-specific limits),
    ``weight_kg`` the patient's latest recorded body weight (per-kg limits; recorded with
    the prescription when the drug has any). "Not screened" notes (a drug or allergy the
    reference data cannot map, a "prn" order's daily total, per-kg limits without a weight)
    need no override reason but are recorded with the alerts, so the chart shows them.
    """
    code, name, route = request.drug_code, request.drug_name, request.route
    allergies = [(a.substance, a.substance_code) for a in patient.active_allergies]
    alerts = _dose_alerts(
        patient, on, code, request.dose, request.dose_unit, route, request.frequency, weight_kg
    ) + allergy_alerts(code, name, allergies)
    override = _overridable(alerts, request.override_reason)
    notes = (
        screening_gaps(code, name, allergies)
        + dose_gaps(code, request.frequency, route, age_known=True)
        + weight_gaps(code, route, weight_kg)
    )
    per_kg = any(limit.applies(route, None) for limit in weight_limits().get(code.strip(), ()))
    return request.model_copy(
        update={
            "alerts_overridden": (*alerts, *notes),
            "override_reason": override,
            "weight_kg": weight_kg if per_kg else None,
        }
    )


def _active(order: MedicationOrder, what: str) -> None:
    if order.status == "discontinued":
        raise ClinicalRuleViolation(
            f"the medication is discontinued: cannot {what}", field="medication_id"
        )


def change(
    order: MedicationOrder,
    request: m.MedicationChanged,
    reason: str | None,
    patient: Patient,
    on: date,
    weight_kg: float | None = None,
) -> m.MedicationChanged:
    """The change with its dose alerts (single, per 24 h at the new frequency, at the patient's
    age on ``on`` and latest weight); ``OverrideRequired`` if one needs an override reason."""
    require_reason(reason, "change a medication")
    _active(order, "change it")
    dose = request.dose if request.dose is not None else order.dose
    unit = request.dose_unit or order.dose_unit
    frequency = request.frequency or order.frequency
    # The drug does not change here, so only the dose (and its daily total) is checked again.
    alerts = _dose_alerts(
        patient, on, order.drug_code, dose, unit, order.route, frequency, weight_kg
    )
    override = _overridable(alerts, request.override_reason)
    return request.model_copy(
        update={"alerts_overridden": tuple(alerts), "override_reason": override}
    )


def discontinue(order: MedicationOrder, reason: str | None) -> m.MedicationDiscontinued:
    require_reason(reason, "discontinue a medication")
    _active(order, "discontinue it again")
    return m.MedicationDiscontinued()


def _doses_in_one_unit(
    given: float, given_unit: str, ordered: float, ordered_unit: str
) -> tuple[float, float] | None:
    """Both doses in one unit (``units.json`` dose conversions), or None if not convertible."""
    if given_unit == ordered_unit:
        return given, ordered
    try:
        given_canonical = canonical_unit(given_unit, field="dose_unit")
        ordered_canonical = canonical_unit(ordered_unit, field="dose_unit")
    except UnknownUnitError:
        return None
    conversions = unit_table().dose_conversions

    def into(value: float, unit: str, target: str) -> float | None:
        if unit == target:
            return value
        conversion = conversions.get((unit, target))
        return conversion.apply(value) if conversion else None

    targets = sorted({given_canonical, ordered_canonical} | {to for _, to in conversions})
    for target in targets:
        a, b = into(given, given_canonical, target), into(ordered, ordered_canonical, target)
        if a is not None and b is not None:
            return a, b
    return None


def _administration_alerts(
    order: MedicationOrder, given: m.MedicationAdministered, weight_kg: float | None
) -> list[str]:
    alerts = weight_dose_alerts(
        order.drug_code,
        given.dose,
        given.dose_unit,
        route=given.route,
        frequency=None,
        weight_kg=weight_kg,
    )
    if order.status == "discontinued":
        alerts.append("the medication is discontinued")
    if order.verification == "rejected":
        alerts.append("the order was rejected by pharmacy")
    elif order.verification == "pending":
        alerts.append("the order is not yet verified by pharmacy")
    doses = _doses_in_one_unit(given.dose, given.dose_unit, order.dose, order.dose_unit)
    if doses is None or not math.isclose(*doses, rel_tol=_DOSE_REL_TOL):
        alerts.append(
            f"dose {given.dose:g} {given.dose_unit} differs from the ordered "
            f"{order.dose:g} {order.dose_unit}"
        )
    return alerts


def administer(
    order: MedicationOrder,
    given: m.MedicationAdministered,
    now: datetime,
    weight_kg: float | None = None,
) -> m.MedicationAdministered:
    """The administration as recorded, or refused: a non-standard one needs an override reason.

    Non-standard: the order is discontinued, rejected or not yet verified by pharmacy, the
    dose (converted when the units differ) is not the ordered dose, or it exceeds a per-kg
    single-dose limit at the patient's latest weight ``weight_kg`` (which may have changed
    since the prescription). The reason is recorded only when it overrode something.
    """
    if given.administered_at > now:
        raise ClinicalRuleViolation("administered_at is in the future", field="administered_at")
    alerts = _administration_alerts(order, given, weight_kg)
    override = _overridable(alerts, given.override_reason)
    return given.model_copy(update={"override_reason": override})


def pharmacy_decision(
    order: MedicationOrder,
    order_version: int,
    decision: m.PharmacyVerified | m.PharmacyRejected,
    reason: str | None,
) -> m.PharmacyVerified | m.PharmacyRejected:
    if isinstance(decision, m.PharmacyRejected):
        require_reason(reason, "reject a prescription")
    _active(order, "verify it")
    if order_version != order.order_change_version:
        raise ConflictError(
            f"the prescriber changed the order since version {order_version} "
            f"(now {order.order_change_version}): review the new item"
        )
    # A verified order is reviewed again through another item (an allergy re-screen): that
    # item may confirm or reject it. The same item is never decided twice, and a rejected
    # order stays rejected until the prescriber changes it.
    again = order.verification == "verified" and decision.item_id != order.decided_item
    if order.verification != "pending" and not again:
        raise ConflictError(f"this version of the order was already {order.verification}")
    return decision
