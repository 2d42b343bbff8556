"""The FHIR rows of the role matrix (``test_role_matrix.py``): each ``/fhir/R4`` operation,
the roles it is open to, and how a refusal looks there (an OperationOutcome, code forbidden)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

FHIR = "/fhir/R4"
CLINICIANS = {"nurse", "physician", "pharmacist"}
# (a far ``_since`` and one type keep each started export small)
ASYNC = {"Prefer": "respond-async"}
SMALL_EXPORT = {"_type": "Patient", "_since": "2100-01-01T00:00:00Z"}

Call = Callable[[httpx.Client, Any], httpx.Response]


def _get(path: str, params: dict[str, str] | None = None) -> Call:
    return lambda c, w: c.get(
        FHIR + path.format(p=w.patient),
        params={k: v.format(p=w.patient) for k, v in (params or {}).items()},
    )


def _allergy_transaction(c: httpx.Client, w: Any) -> httpx.Response:
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": str(uuid.uuid4()),
        "patient": {"reference": f"Patient/{w.patient}"},
        "code": {"text": "latex"},
        "reaction": [{"manifestation": [{"text": "rash"}], "severity": "mild"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": allergy, "request": {"method": "POST", "url": "AllergyIntolerance"}}
        ],
    }
    return c.post(FHIR, json=bundle, headers={"Content-Type": "application/fhir+json"})


def _unknown_job(method: str, tail: str = "") -> Call:
    """An export job that does not exist: 404 for the role allowed, 403 for the others."""
    return lambda c, _: c.request(method, f"{FHIR}/$export-status/{uuid.uuid4()}{tail}")


FHIR_ROUTES: dict[str, tuple[Call, set[str]]] = {
    "GET /fhir/R4/{resource_type}": (_get("/Observation", {"patient": "{p}"}), CLINICIANS),
    "GET /fhir/R4/{resource_type}?family": (
        _get("/Patient", {"family": "Testperson"}),
        {"front_desk", "nurse", "physician", "pharmacist", "billing"},
    ),
    "GET /fhir/R4/{resource_type}/{id}": (_get("/Patient/{p}"), CLINICIANS),
    "GET /fhir/R4/Patient/{id}/$everything": (_get("/Patient/{p}/$everything"), CLINICIANS),
    "POST /fhir/R4": (_allergy_transaction, {"nurse", "physician"}),
    "GET /fhir/R4/{resource_type}/{id}/_history": (
        _get("/Patient/{p}/_history"),
        {"physician", "compliance"},
    ),
    "GET /fhir/R4/{resource_type}/{id}/_history/{id}": (
        _get("/Patient/{p}/_history/1"),
        {"physician", "compliance"},
    ),
    "GET /fhir/R4/AuditEvent": (_get("/AuditEvent", {"patient": "{p}"}), {"compliance"}),
    # (an unknown id: 404 for compliance)
    "GET /fhir/R4/AuditEvent/{id}": (
        lambda c, _: c.get(f"{FHIR}/AuditEvent/{uuid.uuid4()}"),
        {"compliance"},
    ),
    "GET /fhir/R4/$export": (
        lambda c, _: c.get(f"{FHIR}/$export", params=SMALL_EXPORT, headers=ASYNC),
        {"compliance"},
    ),
    "GET /fhir/R4/Patient/$export": (
        lambda c, _: c.get(f"{FHIR}/Patient/$export", params=SMALL_EXPORT, headers=ASYNC),
        {"compliance"},
    ),
    "GET /fhir/R4/$export-status/{id}": (_unknown_job("GET"), {"compliance"}),
    "DELETE /fhir/R4/$export-status/{id}": (_unknown_job("DELETE"), {"compliance"}),
    "GET /fhir/R4/$export-file/{id}/{file_name}": (
        lambda c, _: c.get(f"{FHIR}/$export-file/{uuid.uuid4()}/Patient.ndjson"),
        {"compliance"},
    ),
}
FHIR_NOT_ROLE_BOUND = {"GET /fhir/R4/metadata"}


def is_forbidden(route: str, answer: httpx.Response) -> bool:
    """A refusal as the route's side of the API words it: problem+json on ``/v1``, an
    OperationOutcome with code ``forbidden`` on ``/fhir/R4``."""
    body = answer.json()
    if route.split(" ", 1)[1].startswith(FHIR):
        return body["resourceType"] == "OperationOutcome" and any(
            i["code"] == "forbidden" for i in body["issue"]
        )
    return str(body["type"]).endswith("/forbidden")
