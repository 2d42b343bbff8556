"""The lab order aggregate: placed → specimen collected → results → amended, or cancelled.

Results are acknowledged by the physician, or escalated to the care team when a critical
one is not acknowledged in time. An order (and its results) names the encounter it belongs
to when one was open; an order from another system keeps that system's placer number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from events.domain.aggregates.access import TeamMember
from events.domain.aggregates.common import require_reason
from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, ConflictError, NotFound
from events.domain.payloads import orders as o
from events.domain.rules.results import (
    amended_status,
    flag_value,
    is_critical,
    parse_value,
    received_status,
)

OrderStatus = Literal["placed", "collected", "resulted", "cancelled"]


@dataclass(frozen=True)
class Result:
    """An analyte result; an amended one keeps its original value.

    ``acknowledged`` and ``escalated`` concern the current notification: an amendment that
    leaves the result critical starts a new one (both false again)."""

    result_id: UUID
    code: str
    name: str
    value: float | None
    unit: str | None
    reference_low: float | None
    reference_high: float | None
    flag: str | None
    original_value: float | None = None
    comparator: str | None = None
    value_text: str | None = None
    status: str = "final"
    acknowledged: bool = False
    escalated: bool = False
    notified_at: datetime | None = None  # when it was last routed as critical


@dataclass(frozen=True)
class LabOrder:
    """A lab order's current state."""

    id: UUID
    version: int
    patient_id: UUID
    test_code: str
    test_name: str
    priority: str
    ordering_physician: UUID
    status: OrderStatus = "placed"
    collected_at: datetime | None = None
    results: tuple[Result, ...] = ()
    encounter_id: UUID | None = None
    placer_number: str | None = None


@dataclass(frozen=True)
class AnalyteInput:
    """One analyte as the lab sends it, before the flag is computed.

    ``value`` is a number or the text the lab reported (``"<0.01"``, ``"positive"``);
    ``status`` is preliminary or final for a new result, and for an amendment the status it
    asks for (None: finalise a preliminary result, correct a final one)."""

    code: str
    name: str
    value: float | str
    unit: str | None
    reference_low: float | None = None
    reference_high: float | None = None
    status: str | None = None


def _result(r: o.AnalyteResult, recorded_at: datetime) -> Result:
    return Result(
        r.result_id,
        r.code,
        r.name,
        r.value,
        r.unit,
        r.reference_low,
        r.reference_high,
        r.flag,
        comparator=r.comparator,
        value_text=r.value_text,
        status=r.status,
        notified_at=recorded_at if is_critical(r.flag) else None,
    )


def _amended(r: Result, payload: o.ResultAmended, recorded_at: datetime) -> Result:
    critical = is_critical(payload.flag)
    return replace(
        r,
        value=payload.value,
        unit=payload.unit,
        reference_low=payload.reference_low,
        reference_high=payload.reference_high,
        flag=payload.flag,
        original_value=r.original_value if r.original_value is not None else r.value,
        comparator=payload.comparator,
        value_text=payload.value_text,
        status=payload.status,
        acknowledged=r.acknowledged and not critical,
        escalated=r.escalated and not critical,
        notified_at=recorded_at if critical else r.notified_at,
    )


def _each(state: LabOrder, result_id: UUID, change: Callable[[Result], Result]) -> LabOrder:
    results = tuple(change(r) if r.result_id == result_id else r for r in state.results)
    return replace(state, results=results)


def evolve(state: LabOrder | None, event: ClinicalEvent) -> LabOrder:
    payload = event.payload
    if isinstance(payload, o.OrderPlaced):
        if event.patient_id is None:
            raise ValueError("order.placed without a patient")
        return LabOrder(
            id=event.originator_id,
            version=event.originator_version,
            patient_id=event.patient_id,
            test_code=payload.test_code,
            test_name=payload.test_name,
            priority=payload.priority,
            ordering_physician=payload.ordering_physician,
            encounter_id=payload.encounter_id,
            placer_number=payload.placer_number,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before order.placed")
    state = replace(state, version=event.originator_version)
    if isinstance(payload, o.SpecimenCollected):
        return replace(state, status="collected", collected_at=payload.collected_at)
    if isinstance(payload, o.ResultReceived):
        received = tuple(_result(r, event.recorded_at) for r in payload.results)
        return replace(state, status="resulted", results=(*state.results, *received))
    if isinstance(payload, o.ResultAmended):
        return _each(state, payload.result_id, lambda r: _amended(r, payload, event.recorded_at))
    if isinstance(payload, o.OrderCancelled):
        return replace(state, status="cancelled")
    if isinstance(payload, o.ResultAcknowledged):
        return _each(state, payload.result_id, lambda r: replace(r, acknowledged=True))
    if isinstance(payload, o.ResultEscalated):
        return _each(state, payload.result_id, lambda r: replace(r, escalated=True))
    raise ValueError(f"lab order stream cannot apply {event.event_type}")


def _not_cancelled(order: LabOrder, what: str) -> None:
    if order.status == "cancelled":
        raise ClinicalRuleViolation(f"the order is cancelled: cannot {what}", field="order_id")


class DuplicatePlacerNumber(ConflictError):
    """An order with this placer number exists (its id, when it is the same patient's)."""

    def __init__(self, existing_id: UUID | None) -> None:
        named = f" ({existing_id})" if existing_id is not None else ""
        super().__init__(f"an order with this placer number already exists{named}")
        self.existing_id = existing_id


def require_physician(member: TeamMember | None, user_id: UUID, field: str) -> None:
    """An ordering physician or prescriber named explicitly is an active physician."""
    if member is None:
        raise ClinicalRuleViolation(f"there is no user {user_id}", field=field)
    if member.role != "physician":
        raise ClinicalRuleViolation(
            f"{field} must be a physician, not a {member.role}", field=field
        )
    if not member.active:
        raise ClinicalRuleViolation(f"{field} is a deactivated account", field=field)


def place(
    test_code: str,
    test_name: str,
    priority: str,
    ordering_physician: UUID,
    *,
    encounter_id: UUID | None = None,
    placer_number: str | None = None,
    existing: LabOrder | None = None,
    patient_id: UUID | None = None,
) -> o.OrderPlaced:
    """A new order; with a placer number, refused when its stream holds an order already
    (``existing``: the id is named only to the same patient's orders)."""
    if existing is not None:
        raise DuplicatePlacerNumber(existing.id if existing.patient_id == patient_id else None)
    return o.OrderPlaced.model_validate(
        {
            "test_code": test_code,
            "test_name": test_name,
            "priority": priority,
            "ordering_physician": ordering_physician,
            "encounter_id": encounter_id,
            "placer_number": placer_number,
        }
    )


def collect_specimen(
    order: LabOrder, collected_at: datetime, now: datetime, specimen_type: str | None = None
) -> o.SpecimenCollected:
    _not_cancelled(order, "collect a specimen")
    if order.status == "resulted":
        raise ClinicalRuleViolation(
            "results were already received: no specimen after a result", field="collected_at"
        )
    if collected_at > now:
        raise ClinicalRuleViolation("collected_at is in the future", field="collected_at")
    return o.SpecimenCollected(collected_at=collected_at, specimen_type=specimen_type)


def _reported(code: str, analyte: AnalyteInput, status: str) -> dict[str, object]:
    """The payload fields of a reported value: parsed, flagged, with its status."""
    reported = parse_value(analyte.value)
    unit = analyte.unit.strip() if analyte.unit is not None and analyte.unit.strip() else None
    flag = flag_value(code, reported, unit, analyte.reference_low, analyte.reference_high)
    return {
        "value": reported.value,
        "comparator": reported.comparator,
        "value_text": reported.text,
        "value_type": reported.value_type,
        "unit": unit,
        "reference_low": analyte.reference_low,
        "reference_high": analyte.reference_high,
        "flag": flag,
        "status": status,
    }


def receive_results(
    order: LabOrder,
    analytes: list[AnalyteInput],
    result_ids: list[UUID],
    open_encounter: UUID | None = None,
) -> o.ResultReceived:
    """The results, flagged; they belong to the patient's ``open_encounter``, else (a result
    after discharge) to the encounter the order was placed in."""
    _not_cancelled(order, "receive results")
    if order.status == "placed":
        raise ClinicalRuleViolation("no specimen was collected for this order yet", field="results")
    if not analytes:
        raise ClinicalRuleViolation("at least one result is required", field="results")
    results = []
    for index, (analyte, result_id) in enumerate(zip(analytes, result_ids, strict=True)):
        try:
            status = received_status(analyte.status or "final")
            fields = _reported(analyte.code, analyte, status)
        except ClinicalRuleViolation as exc:
            exc.field = f"results.{index}.{exc.field or 'unit'}"
            raise
        results.append(
            o.AnalyteResult.model_validate(
                {"result_id": result_id, "code": analyte.code, "name": analyte.name, **fields}
            )
        )
    return o.ResultReceived(
        results=tuple(results), encounter_id=open_encounter or order.encounter_id
    )


def amend_result(
    order: LabOrder, result_id: UUID, corrected: AnalyteInput, reason: str | None
) -> o.ResultAmended:
    """Finalise a preliminary result (no reason needed) or correct a final one (a reason)."""
    _not_cancelled(order, "amend a result")
    match = [r for r in order.results if r.result_id == result_id]
    if not match:
        raise NotFound("result", result_id)
    original = match[0]
    status, needs_reason = amended_status(original.status, corrected.status)
    if needs_reason:
        require_reason(reason, "amend a result")
    return o.ResultAmended.model_validate(
        {
            "result_id": result_id,
            **_reported(original.code, corrected, status),
            "previous_value": original.value,
            "previous_text": original.value_text,
            "previous_unit": original.unit,
            "previous_flag": original.flag,
            "previous_status": original.status,
        }
    )


def cancel(order: LabOrder, reason: str | None) -> o.OrderCancelled:
    require_reason(reason, "cancel an order")
    _not_cancelled(order, "cancel it again")
    if order.status == "resulted":
        raise ClinicalRuleViolation(
            "the order already has results: amend them instead of cancelling", field="order_id"
        )
    return o.OrderCancelled()


def acknowledge(order: LabOrder, result_id: UUID) -> o.ResultAcknowledged:
    if not any(r.result_id == result_id for r in order.results):
        raise NotFound("result", result_id)
    return o.ResultAcknowledged(result_id=result_id)


def escalate(
    order: LabOrder,
    result_id: UUID,
    recipients: list[o.EscalationRecipient],
    after: timedelta,
    now: datetime,
) -> o.ResultEscalated:
    """Escalate a critical result left unacknowledged for ``after`` since it was routed
    to ``recipients`` (the rest of the care team). Refused when it was acknowledged or
    escalated already, is no longer critical, or the time has not passed."""
    match = [r for r in order.results if r.result_id == result_id]
    if not match:
        raise NotFound("result", result_id)
    result = match[0]
    if not is_critical(result.flag):
        raise ClinicalRuleViolation("the result is not critical: nothing to escalate", field="flag")
    if result.acknowledged or result.escalated:
        done = "acknowledged" if result.acknowledged else "escalated"
        raise ClinicalRuleViolation(f"the result was {done} already", field="result_id")
    notified_at = result.notified_at
    if notified_at is None or now - notified_at < after:
        raise ClinicalRuleViolation("the escalation time has not passed", field="notified_at")
    return o.ResultEscalated.model_validate(
        {
            "result_id": result_id,
            "flag": result.flag,
            "notified_at": notified_at,
            "after_minutes": after.total_seconds() / 60,
            "notified": tuple(recipients),
        }
    )
