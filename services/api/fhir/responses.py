"""FHIR answers on the wire: ``application/fhir+json``, and every error on a FHIR path as an
OperationOutcome (the /v1 routes keep problem+json)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from services.api.denials import record_denial
from services.fhir.outcomes import (
    FHIR_JSON,
    ISSUE_CODES,
    FhirError,
    issue,
    operation_outcome,
    outcome_of,
)

BASE_PATH = "/fhir/R4"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class FhirJSONResponse(JSONResponse):
    """A FHIR resource or Bundle as ``application/fhir+json``."""

    media_type = FHIR_JSON


def is_fhir(request: Request) -> bool:
    path = request.url.path
    return path == BASE_PATH or path.startswith(BASE_PATH + "/")


def _from_problem(answer: Response) -> Response:
    """The same status and headers, the problem's detail (and field errors) as issues."""
    body: dict[str, Any] = json.loads(bytes(answer.body))
    code = ISSUE_CODES.get(answer.status_code, "processing")
    issues = [
        issue(str(e.get("message", "")), code="invalid", expression=[str(e["field"])])
        for e in body.get("errors", [])
        if e.get("field")
    ] or [issue(str(body.get("detail") or body.get("title") or "error"), code=code)]
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in _ENTITY_HEADERS}
    return FhirJSONResponse(
        operation_outcome(*issues), status_code=answer.status_code, headers=headers
    )


_ENTITY_HEADERS = {"content-length", "content-type"}


def _fhir_aware(handler: Handler) -> Handler:
    async def answer(request: Request, exc: Exception) -> Response:
        given = handler(request, exc)
        response = await given if inspect.isawaitable(given) else given
        if is_fhir(request) and response.media_type != FHIR_JSON:
            return _from_problem(response)
        return response

    return answer


def install(app: FastAPI) -> None:
    """Answer ``FhirError`` as an OperationOutcome, and make every other error handler
    answer one too when the request was on a FHIR path (call after the problem handlers)."""

    @app.exception_handler(FhirError)
    async def _fhir(request: Request, exc: FhirError) -> JSONResponse:
        if exc.status in (401, 403):
            kind = "forbidden" if exc.status == 403 else "unauthenticated"
            await record_denial(request, exc.status, kind, str(exc), exc.patient_id)
        return FhirJSONResponse(outcome_of(exc), status_code=exc.status, headers=exc.headers)

    for kind, handler in list(app.exception_handlers.items()):
        if kind is not FhirError:
            app.exception_handlers[kind] = _fhir_aware(handler)
