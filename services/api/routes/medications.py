"""``/v1/medications/{id}``: changes, discontinuation and administrations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.domain.aggregates import medications as medication_aggregate
from events.domain.errors import NotFound
from services.api.container import Container
from services.api.deps import ContainerDep, IdempotencyKey, command_context, patient_access, require
from services.api.schemas.common import Written
from services.api.schemas.medications import AdministrationCreate, Discontinue, MedicationChange
from services.auth.service import Principal

router = APIRouter(prefix="/v1/medications", tags=["medications"])

Physician = Annotated[Principal, Depends(require("physician"))]
Nurse = Annotated[Principal, Depends(require("nurse"))]


def _check_patient(container: Container, user: Principal, medication_id: UUID) -> None:
    order = container.store.load(medication_id, medication_aggregate.evolve)
    if order is None:
        raise NotFound("medication order", medication_id)
    patient_access(container, user, order.patient_id)


@router.post("/{medication_id}/change", status_code=status.HTTP_201_CREATED, response_model=Written)
def change_medication(
    medication_id: UUID,
    body: MedicationChange,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Change dose or frequency, with a reason; a stale concurrent change answers 409."""
    _check_patient(container, user, medication_id)
    request = body.model_dump(exclude={"occurred_at", "reason"}, exclude_none=True)
    result = container.store.change_medication(
        command_context(user, body.reason, body.occurred_at, key), medication_id, request
    )
    return Written(id=result.id, position=result.position)


@router.post(
    "/{medication_id}/discontinue", status_code=status.HTTP_201_CREATED, response_model=Written
)
def discontinue_medication(
    medication_id: UUID,
    body: Discontinue,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Discontinue, with a reason."""
    _check_patient(container, user, medication_id)
    result = container.store.discontinue_medication(
        command_context(user, body.reason, body.occurred_at, key), medication_id
    )
    return Written(id=result.id, position=result.position)


@router.post(
    "/{medication_id}/administrations", status_code=status.HTTP_201_CREATED, response_model=Written
)
def record_administration(
    medication_id: UUID,
    body: AdministrationCreate,
    container: ContainerDep,
    user: Nurse,
    key: IdempotencyKey = None,
) -> Written:
    """Record a dose given."""
    _check_patient(container, user, medication_id)
    request = body.model_dump(exclude={"occurred_at", "reason"}, exclude_none=True)
    result = container.store.record_administration(
        command_context(user, body.reason, body.occurred_at, key), medication_id, request
    )
    return Written(id=result.id, position=result.position)
