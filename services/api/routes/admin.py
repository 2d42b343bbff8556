"""``/v1/admin/users``: user administration for the admin role (itself audited as events)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from events.commands.patients import ErasePatient
from services.api.deps import ContainerDep, IdempotencyKey, command_context, require
from services.api.schemas.auth import RoleChange, UserCreate
from services.api.schemas.common import Written
from services.auth.service import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require("admin"))]
Eraser = Annotated[Principal, Depends(require("compliance", "admin"))]


class ErasureCreate(BaseModel):
    """Ask for (or, as a second person, approve) a patient's erasure."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"legal_basis": "GDPR art. 17 request of 2026-11-02", "reason": "patient request"}
            ]
        },
    )

    legal_basis: str = Field(min_length=3, max_length=500)
    reason: str = Field(min_length=3, max_length=1000)


class ErasureAnswer(BaseModel):
    """``pending_approval`` after the first request, ``erased`` once a second person approved."""

    id: UUID
    position: int
    status: Literal["pending_approval", "erased"]


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=Written)
def create_user(
    body: UserCreate, container: ContainerDep, user: Admin, key: IdempotencyKey = None
) -> Written:
    """Create a user with one role; a taken username answers 409 with the existing id."""
    result = container.auth.create_user(
        command_context(user, key=key),
        body.username,
        body.display_name,
        body.role,
        body.password,
        body.totp_secret,
    )
    return Written(id=result.id, position=result.position)


@router.post(
    "/patients/{patient_id}/erase",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureAnswer,
    responses={201: {"model": ErasureAnswer, "description": "approved and erased"}},
)
def erase_patient(
    patient_id: UUID,
    body: ErasureCreate,
    container: ContainerDep,
    user: Eraser,
    response: Response,
) -> ErasureAnswer:
    """Two-person erasure: a first call requests it (202), a call by another compliance or
    admin user approves it (201): the data key is destroyed and every projection purges."""
    result, erased = container.store.request_erasure(
        command_context(user, body.reason), ErasePatient(patient_id, body.legal_basis)
    )
    if erased:
        response.status_code = status.HTTP_201_CREATED
    return ErasureAnswer(
        id=result.id, position=result.position, status="erased" if erased else "pending_approval"
    )


@router.post("/users/{user_id}/roles", status_code=status.HTTP_201_CREATED, response_model=Written)
def change_role(
    user_id: UUID,
    body: RoleChange,
    container: ContainerDep,
    user: Admin,
    key: IdempotencyKey = None,
) -> Written:
    """Give the user another role; their open sessions end."""
    result = container.auth.change_role(
        command_context(user, body.reason, key=key), user_id, body.role
    )
    return Written(id=result.id, position=result.position)
