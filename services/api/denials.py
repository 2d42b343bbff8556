"""Denied requests as events: who (when known), what, when and from where.

Every ``401`` and ``403`` the API answers, except at the token endpoint (failed logins are
events of their own), becomes an ``access.denied`` event. The route is recorded as its
template and the patient's id in its own field, so nothing clinical reaches the log. One
client address gets ``BACKBONE_RATE_LIMIT_DENIALS`` recorded denials (120 a minute); past
that they are only logged, so an unauthenticated flood cannot grow the store unbounded.
"""

from __future__ import annotations

import logging
from uuid import UUID

import psycopg
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from events.commands.access import RecordDenial
from events.domain.errors import DomainError
from services.api.container import Container
from services.auth.service import Principal

log = logging.getLogger(__name__)

NOT_RECORDED = ("/v1/auth/",)


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/patients/{patient_id}/chart``)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return _with_prefix(request, path)
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", request.url.path))
    return "(unmatched)"


def _with_prefix(request: Request, template: str) -> str:
    """The template from the root: a route of a router included in a prefixed router knows
    only its own part (``/{resource_type}/{resource_id}``), the path the whole. The prefix is
    what the path holds before the template filled with the path's parameters (prefixes are
    fixed text, never ids)."""
    try:
        filled = template.format(**request.path_params)
    except (KeyError, IndexError, ValueError):
        return template
    path = request.url.path
    if path.endswith(filled) and path != filled:
        return path[: len(path) - len(filled)] + template
    return template


def _patient_of(request: Request) -> UUID | None:
    raw = request.path_params.get("patient_id")
    try:
        return UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None


async def record_denial(
    request: Request, status: int, kind: str, detail: str, patient_id: UUID | None = None
) -> None:
    """Append the denial (its patient from the path unless named); a failure to record is
    logged, never turned into a 500."""
    if request.url.path.startswith(NOT_RECORDED):
        return
    container: Container = request.app.state.container
    client = request.client.host if request.client else "unknown"
    guards = getattr(request.app.state, "guards", None)
    if guards is not None and not guards.rates.allow("denials", client):
        log.warning("denial not recorded: this address is over its denial budget")
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    method = request.method if request.method in ("GET", "POST", "PUT", "PATCH") else "DELETE"
    cmd = RecordDenial(
        method=method,
        route=route_template(request),
        status=status,
        kind=kind,
        detail=detail,
        patient_id=patient_id or _patient_of(request),
        client=None if client == "unknown" else client,
    )
    actor = principal.actor if principal is not None else None
    try:
        await run_in_threadpool(container.store.record_denial, actor, cmd)
    except (DomainError, psycopg.Error, OSError) as exc:
        log.error("denial not recorded", extra={"fields": {"error": type(exc).__name__}})
