"""The lab order aggregate: placed → specimen collected → results → amended, or cancelled."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, NotFound
from events.domain.payloads import orders as o
from events.domain.rules.results import flag_result

OrderStatus = Literal["placed", "collected", "resulted", "cancelled"]


@dataclass(frozen=True)
class Result:
    """An analyte result; an amended one keeps its original value."""

    result_id: UUID
    code: str
    name: str
    value: float
    unit: str
    reference_low: float | None
    reference_high: float | None
    flag: str
    original_value: float | None = None


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


@dataclass(frozen=True)
class AnalyteInput:
    """One analyte as the lab sends it, before the flag is computed."""

    code: str
    name: str
    value: float
    unit: str
    reference_low: float | None = None
    reference_high: float | None = None


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
        )
    if state is None:
        raise ValueError(f"{event.event_type} before order.placed")
    state = replace(state, version=event.originator_version)
    if isinstance(payload, o.SpecimenCollected):
        return replace(state, status="collected", collected_at=payload.collected_at)
    if isinstance(payload, o.ResultReceived):
        received = tuple(
            Result(
                r.result_id,
                r.code,
                r.name,
                r.value,
                r.unit,
                r.reference_low,
                r.reference_high,
                r.flag,
            )
            for r in payload.results
        )
        return replace(state, status="resulted", results=(*state.results, *received))
    if isinstance(payload, o.ResultAmended):
        results = tuple(
            replace(
                r,
                value=payload.value,
                unit=payload.unit,
                reference_low=payload.reference_low,
                reference_high=payload.reference_high,
                flag=payload.flag,
                original_value=r.original_value if r.original_value is not None else r.value,
            )
            if r.result_id == payload.result_id
            else r
            for r in state.results
        )
        return replace(state, results=results)
    if isinstance(payload, o.OrderCancelled):
        return replace(state, status="cancelled")
    if isinstance(payload, o.ResultAcknowledged):
        return state
    raise ValueError(f"lab order stream cannot apply {event.event_type}")


def _not_cancelled(order: LabOrder, what: str) -> None:
    if order.status == "cancelled":
        raise ClinicalRuleViolation(f"the order is cancelled: cannot {what}", field="order_id")


def place(test_code: str, test_name: str, priority: str, ordering_physician: UUID) -> o.OrderPlaced:
    return o.OrderPlaced.model_validate(
        {
            "test_code": test_code,
            "test_name": test_name,
            "priority": priority,
            "ordering_physician": ordering_physician,
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


def receive_results(
    order: LabOrder, analytes: list[AnalyteInput], result_ids: list[UUID]
) -> o.ResultReceived:
    _not_cancelled(order, "receive results")
    if order.status == "placed":
        raise ClinicalRuleViolation("no specimen was collected for this order yet", field="results")
    if not analytes:
        raise ClinicalRuleViolation("at least one result is required", field="results")
    results = []
    for index, (analyte, result_id) in enumerate(zip(analytes, result_ids, strict=True)):
        try:
            flag = flag_result(
                analyte.code,
                analyte.value,
                analyte.unit,
                analyte.reference_low,
                analyte.reference_high,
            )
        except ClinicalRuleViolation as exc:
            exc.field = f"results.{index}.{exc.field or 'unit'}"
            raise
        results.append(
            o.AnalyteResult(
                result_id=result_id,
                code=analyte.code,
                name=analyte.name,
                value=analyte.value,
                unit=analyte.unit,
                reference_low=analyte.reference_low,
                reference_high=analyte.reference_high,
                flag=flag,
            )
        )
    return o.ResultReceived(results=tuple(results))


def amend_result(
    order: LabOrder, result_id: UUID, corrected: AnalyteInput, reason: str | None
) -> o.ResultAmended:
    require_reason(reason, "amend a result")
    _not_cancelled(order, "amend a result")
    match = [r for r in order.results if r.result_id == result_id]
    if not match:
        raise NotFound("result", result_id)
    original = match[0]
    flag = flag_result(
        original.code,
        corrected.value,
        corrected.unit,
        corrected.reference_low,
        corrected.reference_high,
    )
    return o.ResultAmended(
        result_id=result_id,
        value=corrected.value,
        unit=corrected.unit,
        reference_low=corrected.reference_low,
        reference_high=corrected.reference_high,
        flag=flag,
        previous_value=original.value,
        previous_unit=original.unit,
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
