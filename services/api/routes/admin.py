"""``/v1/admin/users``: user administration for the admin role (itself audited as events)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from services.api.deps import ContainerDep, IdempotencyKey, command_context, require
from services.api.schemas.auth import RoleChange, UserCreate
from services.api.schemas.common import Written
from services.auth.service import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require("admin"))]


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
