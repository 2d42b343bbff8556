"""GET /fhir/R4/metadata: the CapabilityStatement (public: it holds no patient data)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter

from services.api.fhir.responses import FhirJSONResponse
from services.fhir.capability import capability_statement
from services.fhir.outcomes import FHIR_JSON
from services.fhir.resources import KINDS

router = APIRouter()


@cache
def _statement() -> dict[str, Any]:
    try:
        installed = version("clinical-backbone")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = "0"
    return capability_statement(KINDS.values(), installed)


EXAMPLE = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["application/fhir+json", "json"],
    "rest": [{"mode": "server", "resource": [{"type": "Patient"}, {"type": "Observation"}]}],
}


@router.get("/metadata", responses={200: {"content": {FHIR_JSON: {"example": EXAMPLE}}}})
def metadata() -> FhirJSONResponse:
    """What this FHIR server supports: resources, interactions, search parameters, operations."""
    return FhirJSONResponse(_statement())
