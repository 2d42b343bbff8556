"""``/v1/patients/{id}/encounters`` and ``/v1/encounters/{id}/...``: a patient's stays.

Front desk, nurses, physicians and administrators start, transfer, update and end
encounters; a clinician must be on the patient's care team (or have broken the glass), as
for every clinical write. The attending physician of an encounter joins the care team.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.encounters import (
    EndEncounter,
    StartEncounter,
    TransferEncounter,
    UpdateEncounter,
)
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.common import Written
from services.api.schemas.encounters import (
    EncounterEnd,
    EncounterStart,
    EncounterTransfer,
    EncounterUpdate,
)
from services.auth.service import Principal

router = APIRouter(tags=["encounters"])

Admitter = Annotated[Principal, Depends(require("front_desk", "nurse", "physician", "admin"))]


@router.post(
    "/v1/patients/{patient_id}/encounters",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def start_encounter(
    patient_id: UUID,
    body: EncounterStart,
    container: ContainerDep,
    user: Admitter,
    key: IdempotencyKey = None,
) -> Written:
    """Start an encounter; a second open one is refused (422); the attending joins the team."""
    where = body.location
    cmd = StartEncounter(
        patient_id,
        body.encounter_class,
        where.ward,
        body.attending_id,
        where.room,
        where.bed,
        tuple(body.consulting_ids),
    )
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.start_encounter(ctx, cmd))


@router.post(
    "/v1/encounters/{encounter_id}/transfer",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def transfer_encounter(
    encounter_id: UUID,
    body: EncounterTransfer,
    container: ContainerDep,
    user: Admitter,
    key: IdempotencyKey = None,
) -> Written:
    """Move the patient of an open encounter to another ward, room or bed."""
    where = body.location
    cmd = TransferEncounter(encounter_id, where.ward, where.room, where.bed)
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.transfer_encounter(ctx, cmd))


@router.post(
    "/v1/encounters/{encounter_id}/update",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def update_encounter(
    encounter_id: UUID,
    body: EncounterUpdate,
    container: ContainerDep,
    user: Admitter,
    key: IdempotencyKey = None,
) -> Written:
    """Change the attending, the class or the consultants; the care team follows."""
    cmd = UpdateEncounter(
        encounter_id,
        body.attending_id,
        body.encounter_class,
        tuple(body.consulting_added),
        tuple(body.consulting_removed),
    )
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.update_encounter(ctx, cmd))


@router.post(
    "/v1/encounters/{encounter_id}/end",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def end_encounter(
    encounter_id: UUID,
    body: EncounterEnd,
    container: ContainerDep,
    user: Admitter,
    key: IdempotencyKey = None,
) -> Written:
    """Discharge: end an open encounter; those it brought leave the team after the grace."""
    cmd = EndEncounter(encounter_id, body.disposition)
    ctx = write_context(container, user, body, key)
    return Written.of(container.store.end_encounter(ctx, cmd))
