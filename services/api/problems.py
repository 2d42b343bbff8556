"""Errors as ``application/problem+json`` (RFC 9457), mapped from domain and auth errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.domain.aggregates.patients import PatientMergedError
from events.domain.aggregates.users import DuplicateUsername
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    DomainError,
    DuplicateMRN,
    IdempotencyKeyReused,
    NotFound,
    NotPermitted,
    OverrideRequired,
    PatientErasedError,
    ReasonRequired,
    SelfGrantRefused,
)
from services.api.cursors import InvalidCursor
from services.api.denials import record_denial
from services.api.guards import PositionBeyondHead, ProjectionBehind, RateLimited
from services.auth.service import AuthenticationFailed

PROBLEM = "application/problem+json"
BASE = "https://clinical-backbone.dev/problems/"


class Forbidden(Exception):
    """The caller's role or relation to the patient does not allow this."""


def problem(
    status: int,
    title: str,
    detail: str,
    kind: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    answer_headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    answer_headers.update(headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=answer_headers)


def _field_errors(errors: list[Any]) -> list[dict[str, str]]:
    # Field paths and messages only: the input values may be clinical data.
    return [
        {
            "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
            "message": e["msg"],
        }
        for e in errors
    ]


def domain_problem(exc: DomainError) -> JSONResponse:
    if isinstance(exc, DuplicateMRN | DuplicateUsername):
        return problem(
            409, "Already registered", str(exc), "duplicate", existing_id=str(exc.existing_id)
        )
    if isinstance(exc, PatientMergedError):
        return problem(409, "Merged", str(exc), "merged", survivor_id=str(exc.survivor_id))
    if isinstance(exc, ConflictError):
        return problem(409, "Conflict", str(exc), "conflict")
    if isinstance(exc, NotPermitted):
        return problem(403, "Forbidden", str(exc), "forbidden")
    if isinstance(exc, IdempotencyKeyReused):
        errors = [{"field": "Idempotency-Key", "message": str(exc)}]
        return problem(
            422, "Idempotency-Key reused", str(exc), "idempotency-key-reused", errors=errors
        )
    if isinstance(exc, PatientErasedError):
        return problem(410, "Patient erased", str(exc), "erased")
    if isinstance(exc, NotFound):
        return problem(404, "Not found", str(exc), "not-found")
    if isinstance(exc, OverrideRequired):
        return problem(
            422,
            "Safety check",
            str(exc),
            "override-required",
            alerts=exc.alerts,
            errors=[{"field": "override_reason", "message": "required to override the alerts"}],
        )
    if isinstance(exc, ReasonRequired | ClinicalRuleViolation):
        errors = [{"field": exc.field or "body", "message": str(exc)}]
        return problem(422, "Refused by a clinical rule", str(exc), "clinical-rule", errors=errors)
    return problem(422, "Refused", str(exc), "refused")


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into problem responses."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, NotPermitted):
            kind = "self_grant" if isinstance(exc, SelfGrantRefused) else "forbidden"
            await record_denial(request, 403, kind, str(exc))
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(list(exc.errors()))
        return problem(
            422, "Invalid request", "the request failed validation", "validation", errors=errors
        )

    @app.exception_handler(ValidationError)
    async def _payload(_: Request, exc: ValidationError) -> JSONResponse:
        errors = _field_errors(list(exc.errors()))
        return problem(
            422, "Invalid request", "the request failed validation", "validation", errors=errors
        )

    @app.exception_handler(AuthenticationFailed)
    async def _auth(request: Request, exc: AuthenticationFailed) -> JSONResponse:
        await record_denial(request, 401, "unauthenticated", str(exc))
        if exc.locked_until is not None:
            return problem(
                423, "Locked", str(exc), "locked", locked_until=exc.locked_until.isoformat()
            )
        return problem(401, "Not authenticated", str(exc), "unauthenticated")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        await record_denial(request, 403, "forbidden", str(exc))
        return problem(403, "Forbidden", str(exc), "forbidden")

    @app.exception_handler(RateLimited)
    async def _rate(_: Request, exc: RateLimited) -> JSONResponse:
        return problem(
            429,
            "Too many requests",
            str(exc),
            "rate-limited",
            headers={"Retry-After": str(exc.retry_after_s)},
            retry_after_s=exc.retry_after_s,
        )

    @app.exception_handler(ProjectionBehind)
    async def _behind(_: Request, exc: ProjectionBehind) -> JSONResponse:
        return problem(
            503,
            "Not caught up yet",
            str(exc),
            "projection-behind",
            headers={
                "Retry-After": str(exc.retry_after_s),
                "X-Projection-Position": str(exc.position),
            },
            projection_position=exc.position,
        )

    @app.exception_handler(PositionBeyondHead)
    async def _beyond(_: Request, exc: PositionBeyondHead) -> JSONResponse:
        errors = [{"field": "min_position", "message": str(exc)}]
        return problem(422, "Invalid request", str(exc), "validation", errors=errors)

    @app.exception_handler(InvalidCursor)
    async def _cursor(_: Request, exc: InvalidCursor) -> JSONResponse:
        errors = [{"field": "cursor", "message": str(exc)}]
        return problem(422, "Invalid request", str(exc), "validation", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), "http")
