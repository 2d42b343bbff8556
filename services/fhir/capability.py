"""The CapabilityStatement: built from the kinds themselves, so it lists what is served.

Each kind's search parameters come from ``services.fhir.search.params_of`` (the same table
the search checks against); AuditEvent (a kind kept out of ``$everything`` and export) and
the operations are listed here beside the code that serves them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from services.fhir.kinds import Kind, Param
from services.fhir.resources.audit_event import AUDIT_EVENT
from services.fhir.search import params_of

FHIR_VERSION = "4.0.1"
SOFTWARE = "clinical-backbone"
EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


def _search_params(params: Mapping[str, Param]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": param.type, "documentation": param.description or name}
        for name, param in params.items()
    ]


def _resource(kind: Kind) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": kind.name,
        "interaction": [
            {"code": "read"},
            {"code": "search-type"},
            {"code": "history-instance"},
            {"code": "vread"},
        ],
        "versioning": "versioned",
        "readHistory": True,
        "searchParam": _search_params(params_of(kind)),
    }
    if kind.profiles:
        entry["supportedProfile"] = list(kind.profiles)
    if kind.name == "Patient":
        entry["operation"] = [
            {"name": "everything", "definition": EVERYTHING},
            {"name": "export", "definition": PATIENT_EXPORT},
        ]
    return entry


def capability_statement(kinds: Iterable[Kind], version: str) -> dict[str, Any]:
    """What this server supports, as an R4 CapabilityStatement (``instance`` kind)."""
    audit_event = {
        "type": "AuditEvent",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": _search_params(params_of(AUDIT_EVENT)),
        "documentation": "the access log; compliance role only",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date.today().isoformat(),
        "kind": "instance",
        "software": {"name": SOFTWARE, "version": version},
        "implementation": {"description": "clinical-backbone FHIR R4 endpoint"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": (
                        "Bearer tokens from POST /v1/auth/token; the roles, care-team and "
                        "break-glass rules of /v1; every read audited"
                    )
                },
                "resource": [*(_resource(k) for k in kinds), audit_event],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [{"name": "export", "definition": EXPORT}],
            }
        ],
    }
