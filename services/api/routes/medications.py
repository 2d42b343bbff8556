"""``/v1/medications/{id}``: changes, discontinuation and administrations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.medications import (
    ChangeMedication,
    DiscontinueMedication,
    RecordAdministration,
)
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.common import Written
from services.api.schemas.medications import AdministrationCreate, Discontinue, MedicationChange
from services.auth.service import Principal

router = APIRouter(prefix="/v1/medications", tags=["medications"])

Physician = Annotated[Principal, Depends(require("physician"))]
Nurse = Annotated[Principal, Depends(require("nurse"))]


@router.post("/{medication_id}/change", status_code=status.HTTP_201_CREATED, response_model=Written)
def change_medication(
    medication_id: UUID,
    body: MedicationChange,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Change dose or frequency, with a reason; a stale concurrent change answers 409."""
    change = ChangeMedication(
        medication_id,
        dose=body.dose,
        dose_unit=body.dose_unit,
        frequency=body.frequency,
        override_reason=body.override_reason,
    )
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.change_medication(ctx, change))


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
    ctx = write_context(container, user, body, key)
    return Written.of(
        container.store.discontinue_medication(ctx, DiscontinueMedication(medication_id))
    )


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
    """Record a dose given; a non-standard one without an override reason answers 422."""
    given = RecordAdministration(
        medication_id,
        dose=body.dose,
        dose_unit=body.dose_unit,
        route=body.route,
        administered_at=body.administered_at,
        override_reason=body.override_reason,
    )
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.record_administration(ctx, given))
