"""``/v1/admin/users``: user administration for the admin role (itself audited as events):
create, change role, deactivate, end sessions; and two-person patient erasure."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from events.commands.patients import ErasePatient
from events.domain.payloads.patients import LEGAL_BASIS_LIMIT
from events.domain.text import NOTE_LIMIT
from services.api.deps import ContainerDep, IdempotencyKey, command_context, require
from services.api.schemas.auth import (
    AccountWritten,
    Deactivation,
    RoleChange,
    SessionRevocation,
    UserCreate,
)
from services.api.schemas.common import Written
from services.auth import totp
from services.auth.service import AccountResult, Principal

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

    # The store's own limits, so that what is accepted here is recorded, never refused later.
    legal_basis: str = Field(min_length=3, max_length=LEGAL_BASIS_LIMIT)
    reason: str = Field(min_length=3, max_length=NOTE_LIMIT)


class ErasureAnswer(BaseModel):
    """``pending_approval`` after the first request, ``erased`` once a second person approved."""

    id: UUID
    position: int
    status: Literal["pending_approval", "erased"]


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=AccountWritten)
def create_user(
    body: UserCreate, container: ContainerDep, user: Admin, key: IdempotencyKey = None
) -> AccountWritten:
    """Create a user with one role; a taken username answers 409 with the existing id. Admin
    and compliance accounts get a TOTP secret if none is given (in this answer only)."""
    result = container.auth.create_user(
        command_context(user, key=key),
        body.username,
        body.display_name,
        body.role,
        body.password,
        body.totp_secret,
    )
    return _account(result, body.username)


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


@router.post(
    "/users/{user_id}/roles", status_code=status.HTTP_201_CREATED, response_model=AccountWritten
)
def change_role(
    user_id: UUID,
    body: RoleChange,
    container: ContainerDep,
    user: Admin,
    key: IdempotencyKey = None,
) -> AccountWritten:
    """Give the user another role; their open sessions end. Becoming admin or compliance
    without a TOTP secret gives them one (in this answer only)."""
    result = container.auth.change_role(
        command_context(user, body.reason, key=key), user_id, body.role
    )
    return _account(result, None)


@router.post(
    "/users/{user_id}/approve", status_code=status.HTTP_201_CREATED, response_model=Written
)
def approve_user(
    user_id: UUID, container: ContainerDep, user: Admin, key: IdempotencyKey = None
) -> Written:
    """Approve, as a second administrator, a new admin or compliance account or a change to
    one of those roles (never the requester, nor an account the requester created)."""
    return Written.of(container.auth.approve_user(command_context(user, key=key), user_id))


@router.post(
    "/users/{user_id}/deactivate", status_code=status.HTTP_201_CREATED, response_model=Written
)
def deactivate_user(
    user_id: UUID,
    body: Deactivation,
    container: ContainerDep,
    user: Admin,
    key: IdempotencyKey = None,
) -> Written:
    """Deactivate an account (with a reason): it cannot log in, and its sessions end now."""
    result = container.auth.deactivate_user(command_context(user, body.reason, key=key), user_id)
    return Written.of(result)


@router.post(
    "/users/{user_id}/sessions/revoke",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
)
def revoke_sessions(
    user_id: UUID,
    body: SessionRevocation,
    container: ContainerDep,
    user: Admin,
    key: IdempotencyKey = None,
) -> Written:
    """End every open session of a user now (they can log in again)."""
    result = container.auth.revoke_sessions(command_context(user, body.reason, key=key), user_id)
    return Written.of(result)


def _account(result: AccountResult, username: str | None) -> AccountWritten:
    secret = result.totp_secret
    uri = totp.provisioning_uri(secret, username or str(result.id)) if secret else None
    return AccountWritten(
        id=result.id,
        position=result.position,
        totp_secret=secret,
        totp_uri=uri,
        status="pending_approval" if result.pending_approval else "done",
    )
