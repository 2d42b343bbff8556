"""Request dependencies: the container, the authenticated caller, role and patient checks,
rate limits, bounded waits for a projection position, and who may read docs and metrics."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from events.commands.base import CommandContext
from projections.engine.base import Projection
from projections.waits import Reached, projection_position, wait_applied
from services.api.container import Container
from services.api.guards import Bucket, Guards, PositionBeyondHead, ProjectionBehind
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
    request: Request, container: ContainerDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    if not token:
        raise AuthenticationFailed("a bearer token is required")
    principal = container.auth.authenticate(token)
    request.state.principal = principal  # a later denial names who was refused
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
BearerToken = Annotated[str | None, Depends(oauth2)]
OPERATORS = ("admin", "compliance")


def get_guards(request: Request) -> Guards:
    guards: Guards = request.app.state.guards
    return guards


GuardsDep = Annotated[Guards, Depends(get_guards)]


def rate_limit(bucket: Bucket) -> Callable[[Guards, Principal], None]:
    """A dependency that counts the caller's request in ``bucket`` (429 past its budget)."""

    def check(guards: GuardsDep, user: CurrentUser) -> None:
        guards.rates.hit(bucket, str(user.user_id))

    check.rate_bucket = bucket  # type: ignore[attr-defined]  # read by openapi.rate_limited
    return check


def await_position(
    container: Container,
    guards: Guards,
    min_position: int | None,
    projections: tuple[Projection, ...] | None = None,
) -> None:
    """Wait, bounded, until the projections have applied ``min_position``: 503 with
    Retry-After and their current position when they have not, 422 when no write can have
    answered that position; no pooled connection is held between polls. The wait is on the
    pool the read that follows uses (``replica_reads``): with a read replica, it lasts until
    the replica's marks reach the position, within the same bound, so the read sees it."""
    if not min_position:
        return
    with guards.waits.slot(lambda: projection_position(container.replica_reads, projections)):
        waited = wait_applied(
            container.replica_reads,
            container.store.event_log,
            min_position,
            guards.waits.timeout_s,
            projections,
        )
    if waited.reached is Reached.BEYOND_HEAD:
        raise PositionBeyondHead(min_position, waited.head)
    if waited.reached is Reached.TIMED_OUT:
        raise ProjectionBehind(
            f"the projections have not applied position {min_position} yet",
            waited.position,
            guards.waits.retry_after_s,
        )


def docs_reader(container: ContainerDep, token: BearerToken) -> None:
    """/docs and /openapi.json: open with BACKBONE_PUBLIC_DOCS, else any signed-in user."""
    if container.settings.docs_are_public:
        return
    if not token:
        raise AuthenticationFailed("a bearer token is required")
    container.auth.authenticate(token)


def metrics_reader(container: ContainerDep, token: BearerToken) -> None:
    """/metrics: open with BACKBONE_PUBLIC_DOCS, else BACKBONE_METRICS_TOKEN or an admin or
    compliance user's token."""
    settings = container.settings
    if settings.docs_are_public:
        return
    if not token:
        raise AuthenticationFailed("a bearer token is required")
    scrape = settings.metrics_token
    if scrape and hmac.compare_digest(token.encode(), scrape.encode()):
        return
    user = container.auth.authenticate(token)
    if user.role not in OPERATORS:
        raise Forbidden(f"the {user.role} role may not read metrics")


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
