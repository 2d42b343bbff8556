"""Request dependencies: the container, the authenticated caller, role and patient checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from events.commands.base import CommandContext
from services.api.container import Container
from services.api.problems import Forbidden
from services.api.schemas.common import WriteBase
from services.auth.service import AuthenticationFailed, Principal

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
CLINICIANS = ("nurse", "physician", "pharmacist")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def current_user(
    container: ContainerDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    if not token:
        raise AuthenticationFailed("a bearer token is required")
    return container.auth.authenticate(token)


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (deny by default)."""

    def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise Forbidden(f"the {user.role} role may not do this")
        return user

    return check


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def command_context(
    user: Principal,
    reason: str | None = None,
    occurred_at: datetime | None = None,
    key: str | None = None,
) -> CommandContext:
    return CommandContext(
        actor=user.actor, reason=reason, occurred_at=occurred_at, idempotency_key=key
    )


def write_context(
    container: Container,
    user: Principal,
    body: WriteBase,
    key: str | None,
    *,
    guarded: bool = True,
) -> CommandContext:
    """A write's context: who, why, when, its idempotency key, and (``guarded``) the
    care-team check as the command's guard, run once the command knows the patient."""
    return CommandContext(
        actor=user.actor,
        reason=body.reason,
        occurred_at=body.occurred_at,
        idempotency_key=key,
        guard=(lambda patient_id: patient_access(container, user, patient_id)) if guarded else None,
    )


def patient_access(container: Container, user: Principal, patient_id: UUID) -> bool:
    """Check a clinician may touch this patient's chart; True when through break-glass."""
    if user.role not in CLINICIANS:
        return False
    allowed, break_glass = container.store.may_access(user.user_id, patient_id)
    if not allowed:
        raise Forbidden(
            "you are not on this patient's care team; break the glass with a reason if this "
            "is an emergency"
        )
    return break_glass
