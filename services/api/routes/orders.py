"""``/v1/orders/{id}``: specimen collection, results, amendments and cancellation."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.orders import (
    AmendResult,
    AnalyteInput,
    CancelOrder,
    CollectSpecimen,
    ReceiveResults,
)
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.common import Written
from services.api.schemas.orders import (
    AmendCreate,
    AmendWritten,
    CancelCreate,
    ResultFlag,
    ResultsCreate,
    ResultsWritten,
    SpecimenCreate,
)
from services.auth.service import Principal

router = APIRouter(prefix="/v1/orders", tags=["orders"])

Collector = Annotated[Principal, Depends(require("nurse", "lab_tech"))]
LabTech = Annotated[Principal, Depends(require("lab_tech"))]
Physician = Annotated[Principal, Depends(require("physician"))]


@router.post("/{order_id}/specimen", status_code=status.HTTP_201_CREATED, response_model=Written)
def collect_specimen(
    order_id: UUID,
    body: SpecimenCreate,
    container: ContainerDep,
    user: Collector,
    key: IdempotencyKey = None,
) -> Written:
    """The specimen was collected (nurses need the patient on their care team)."""
    collected = CollectSpecimen(order_id, body.collected_at, body.specimen_type)
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.collect_specimen(ctx, collected))


@router.post(
    "/{order_id}/results", status_code=status.HTTP_201_CREATED, response_model=ResultsWritten
)
def receive_results(
    order_id: UUID,
    body: ResultsCreate,
    container: ContainerDep,
    user: LabTech,
    key: IdempotencyKey = None,
) -> ResultsWritten:
    """Results per analyte (numbers, `<0.01`-style or text values; preliminary or final);
    each answer carries the flag computed (N, L, H, LL, HH; null when none applies)."""
    analytes = tuple(
        AnalyteInput(r.code, r.name, r.value, r.unit, r.reference_low, r.reference_high, r.status)
        for r in body.results
    )
    result = container.store.receive_results(
        write_context(container, user, body, key, guarded=False),
        ReceiveResults(order_id, analytes),
    )
    flags = [ResultFlag.model_validate(r) for r in result.detail["results"]]
    return ResultsWritten(id=result.id, position=result.position, results=flags)


@router.post(
    "/{order_id}/results/{result_id}/amend",
    status_code=status.HTTP_201_CREATED,
    response_model=AmendWritten,
)
def amend_result(
    order_id: UUID,
    result_id: UUID,
    body: AmendCreate,
    container: ContainerDep,
    user: LabTech,
    key: IdempotencyKey = None,
) -> AmendWritten:
    """Finalise a preliminary result or correct a final one (with a reason); a result made
    or left critical is routed to the ordering physician again."""
    corrected = AnalyteInput(
        "", "", body.value, body.unit, body.reference_low, body.reference_high, body.status
    )
    result = container.store.amend_result(
        write_context(container, user, body, key, guarded=False),
        AmendResult(order_id, result_id, corrected),
    )
    return AmendWritten(
        id=result.id,
        position=result.position,
        flag=result.detail["flag"],
        status=result.detail["status"],
    )


@router.post("/{order_id}/cancel", status_code=status.HTTP_201_CREATED, response_model=Written)
def cancel_order(
    order_id: UUID,
    body: CancelCreate,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Cancel the order, with a reason."""
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.cancel_order(ctx, CancelOrder(order_id)))
