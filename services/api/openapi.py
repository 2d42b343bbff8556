"""The OpenAPI document states every problem status a route can answer.

Derived from each route itself, so it stays true as routes change: authenticated routes can
answer 401 and 403; routes with a path id 404; routes about a patient's data 410 once the
patient is erased; routes taking a body or query 422; writes to the store 409 (a
conflicting change, a duplicate, an idempotency key reused); the token route 423 while an
account is locked; routes taking a body 413 past the body cap; rate-limited routes 429 and
reads that wait for a projection (``min_position``, the chart) 503, both with Retry-After.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

CLINICAL_PREFIXES = (
    "/v1/patients/{",
    "/v1/medications/",
    "/v1/orders/",
    "/v1/admin/patients/",
    "/v1/inbox/",
    "/v1/pharmacy/queue/",
)
STORE_WRITES = (
    "/v1/patients",
    "/v1/orders/",
    "/v1/medications/",
    "/v1/admin/",
    "/v1/pharmacy/",
    "/v1/inbox/",
)
TITLES = {
    401: "Not authenticated (or the session ended)",
    403: "Forbidden for this role, or outside the care team",
    404: "Not found",
    409: "Conflict: changed meanwhile, duplicate, or an idempotency key reused",
    410: "The patient was erased",
    422: "Invalid request, or refused by a clinical rule",
    423: "Account locked after repeated failures",
    413: "The request body is larger than the server takes",
    429: "Too many requests of this kind: wait Retry-After seconds",
    503: "The read tables have not caught up (yet): retry after Retry-After seconds; "
    "X-Projection-Position says how far they are",
}
RETRY_AFTER = {"description": "Seconds to wait", "schema": {"type": "integer"}}
PROJECTION_POSITION = {
    "description": "The store position the read tables have reached",
    "schema": {"type": "integer"},
}
# Routes that count toward a rate limit inside the handler rather than by a dependency.
LIMITED_INSIDE = frozenset({("get", "/v1/patients/{patient_id}/chart")})
WAITING = frozenset({("get", "/v1/patients/{patient_id}/chart")})


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://clinical-backbone.dev/problems/clinical-rule",
                    "title": "Refused by a clinical rule",
                    "status": 422,
                    "detail": "occurred_at is before the patient's birth date",
                    "errors": [{"field": "occurred_at", "message": "before the birth date"}],
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Field paths and messages (never the values sent)."
    )


def rate_limited(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route with a rate-limit dependency (``deps.rate_limit``)."""
    found = set(LIMITED_INSIDE)
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if any(getattr(call, "rate_bucket", None) for call in calls):
            found |= {(m.lower(), route.path) for m in route.methods or ()}
    return found


def problem_statuses(
    path: str,
    method: str,
    operation: dict[str, Any],
    limited: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> list[int]:
    """The problem statuses an operation of the OpenAPI document can answer."""
    statuses: set[int] = set()
    parameters = operation.get("parameters", [])
    if "requestBody" in operation:
        statuses.add(413)
    if (method, path) in limited:
        statuses.add(429)
    if (method, path) in WAITING or any(p.get("name") == "min_position" for p in parameters):
        statuses.add(503)
    if path == "/v1/auth/token":
        statuses |= {401, 423}
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        statuses |= {404, 422}
    if path.startswith(CLINICAL_PREFIXES):
        statuses.add(410)
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if method in ("post", "put", "patch", "delete") and path.startswith(STORE_WRITES):
        statuses |= {409, 422}
    return sorted(statuses)


def document_problems(app: FastAPI) -> None:
    """Make the app's OpenAPI document list each operation's problem answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        limited = rate_limited(app)
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                for status in problem_statuses(path, method, operation, limited):
                    answer: dict[str, Any] = {"description": TITLES[status], "content": problem}
                    if status in (429, 503):
                        answer["headers"] = {"Retry-After": RETRY_AFTER}
                    if status == 503:
                        answer["headers"]["X-Projection-Position"] = PROJECTION_POSITION
                    answers.setdefault(str(status), answer)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
