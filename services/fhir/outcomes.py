"""OperationOutcome: how every FHIR answer says what went wrong.

``FhirError`` is what FHIR code raises; the API turns it (and every other error on a FHIR
path) into an OperationOutcome with the same status code."""

from __future__ import annotations

from typing import Any
from uuid import UUID

FHIR_JSON = "application/fhir+json"

# HTTP status → the OperationOutcome issue code a client can act on (FHIR R4 IssueType).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    423: "lock-error",
    429: "throttled",
    503: "transient",
}


class FhirError(Exception):
    """A request the FHIR endpoint refuses: its HTTP status, issue code and diagnostics."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        headers: dict[str, str] | None = None,
        patient_id: UUID | None = None,
    ) -> None:
        super().__init__(diagnostics)
        # A refusal's patient, when the path does not name them: the denial records it.
        self.patient_id = patient_id
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_CODES.get(status, "processing")
        self.expression = expression
        self.headers = headers or {}


def issue(
    diagnostics: str,
    *,
    code: str = "processing",
    severity: str = "error",
    expression: list[str] | None = None,
) -> dict[str, Any]:
    """One OperationOutcome issue."""
    entry: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = expression
    return entry


def operation_outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    """An OperationOutcome resource holding ``issues`` (at least one)."""
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def outcome_of(error: FhirError) -> dict[str, Any]:
    return operation_outcome(issue(error.diagnostics, code=error.code, expression=error.expression))
