"""``/v1/patients/{id}/care-team``: the care team as governed data.

An administrator or a member of the team changes it; the command refuses everyone else,
self-grants, unknown or inactive users and non-clinical roles, and a removal without a
reason. A refused change is a denied request: it is recorded and compliance sees it.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.access import ChangeCareTeam
from projections.access_audit import team_members
from services.api.deps import (
    CLINICIANS,
    ContainerDep,
    IdempotencyKey,
    patient_access,
    require,
    write_context,
)
from services.api.schemas.care_team import CareTeamChange, CareTeamMemberPublic
from services.api.schemas.common import Written
from services.auth.service import Principal

router = APIRouter(prefix="/v1/patients", tags=["care team"])

TeamEditor = Annotated[Principal, Depends(require("admin", *CLINICIANS))]
TeamReader = Annotated[Principal, Depends(require("admin", "compliance", *CLINICIANS))]


@router.post("/{patient_id}/care-team", status_code=status.HTTP_201_CREATED, response_model=Written)
def change_care_team(
    patient_id: UUID,
    body: CareTeamChange,
    container: ContainerDep,
    user: TeamEditor,
    key: IdempotencyKey = None,
) -> Written:
    """Add a user to the patient's care team, or remove one with a reason."""
    ctx = write_context(container, user, body, key, guarded=False)
    return Written.of(
        container.store.change_care_team(ctx, ChangeCareTeam(patient_id, body.user_id, body.change))
    )


@router.get("/{patient_id}/care-team", response_model=list[CareTeamMemberPublic])
def care_team(
    patient_id: UUID, container: ContainerDep, user: TeamReader
) -> list[CareTeamMemberPublic]:
    """The patient's care team (its members, or an administrator or compliance, may look)."""
    if user.role in CLINICIANS:
        patient_access(container, user, patient_id)
    with container.replica_reads.connection() as conn:
        rows = team_members(conn, patient_id)
    return [
        CareTeamMemberPublic(
            user_id=r[0], added_at=r[1], added_by=r[2], encounter_id=r[3], leaves_at=r[4]
        )
        for r in rows
    ]
