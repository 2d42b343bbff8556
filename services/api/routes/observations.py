"""``/v1/patients/{id}/observations``: body weight and height.

Included by the patients router (same prefix and tag). The latest weight is what per-kg
dose limits are checked against when a drug is prescribed, changed or given.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.observations import RecordObservation
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.observations import ObservationCreate, ObservationWritten
from services.auth.service import Principal

router = APIRouter()

NurseOrPhysician = Annotated[Principal, Depends(require("nurse", "physician"))]


@router.post(
    "/{patient_id}/observations",
    status_code=status.HTTP_201_CREATED,
    response_model=ObservationWritten,
)
def record_observation(
    patient_id: UUID,
    body: ObservationCreate,
    container: ContainerDep,
    user: NurseOrPhysician,
    key: IdempotencyKey = None,
) -> ObservationWritten:
    """Record a body weight or height; stored in kg or cm, implausible values refused."""
    observation = RecordObservation(patient_id, body.kind, body.value, body.unit)
    ctx = write_context(container, user, body, key)
    result = container.store.record_observation(ctx, observation)
    return ObservationWritten(id=result.id, position=result.position, **result.detail)
