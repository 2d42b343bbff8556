"""``/v1/patients/{id}/allergies``: record an allergy, its status, "no known allergies".

Included by the patients router (same prefix and tag). A new allergy, or one made active
again, re-screens the patient's active medications in the pharmacy queue.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.patients import (
    ChangeAllergyStatus,
    RecordAllergy,
    RecordNoKnownAllergies,
    RefuteAllergy,
)
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.common import Written
from services.api.schemas.patients import (
    AllergyCreate,
    AllergyStatusChange,
    NoKnownAllergiesCreate,
)
from services.auth.service import Principal

router = APIRouter()

NurseOrPhysician = Annotated[Principal, Depends(require("nurse", "physician"))]


@router.post("/{patient_id}/allergies", status_code=status.HTTP_201_CREATED, response_model=Written)
def record_allergy(
    patient_id: UUID,
    body: AllergyCreate,
    container: ContainerDep,
    user: NurseOrPhysician,
    key: IdempotencyKey = None,
) -> Written:
    """Record an allergy (substance, reaction, severity, criticality); it re-screens the
    patient's active medications in the pharmacy queue."""
    allergy = RecordAllergy(
        patient_id,
        body.substance,
        body.reaction,
        body.severity,
        body.substance_code,
        criticality=body.criticality,
    )
    return Written.of(
        container.store.record_allergy(write_context(container, user, body, key), allergy)
    )


@router.post(
    "/{patient_id}/allergies/none-known",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def record_no_known_allergies(
    patient_id: UUID,
    body: NoKnownAllergiesCreate,
    container: ContainerDep,
    user: NurseOrPhysician,
    key: IdempotencyKey = None,
) -> Written:
    """Record "no known drug allergies" (422 while an allergy is active)."""
    ctx = write_context(container, user, body, key)
    return Written.of(
        container.store.record_no_known_allergies(ctx, RecordNoKnownAllergies(patient_id))
    )


@router.post(
    "/{patient_id}/allergies/{allergy_id}/status",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def change_allergy_status(
    patient_id: UUID,
    allergy_id: UUID,
    body: AllergyStatusChange,
    container: ContainerDep,
    user: NurseOrPhysician,
    key: IdempotencyKey = None,
) -> Written:
    """Make an allergy inactive, active again or refuted, with a reason."""
    ctx = write_context(container, user, body, key)
    if body.status == "refuted":
        return Written.of(
            container.store.refute_allergy(ctx, RefuteAllergy(patient_id, allergy_id))
        )
    change = ChangeAllergyStatus(patient_id, allergy_id, body.status)
    return Written.of(container.store.change_allergy_status(ctx, change))
