"""The kick-off request of ``$export``: its parameters, validated, or a 400 OperationOutcome."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.fhir.outcomes import FhirError

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
NOT_SUPPORTED = frozenset({"_typeFilter", "_elements", "patient", "includeAssociatedData"})
KNOWN = frozenset({"_outputFormat", "_type", "_since"})


@dataclass(frozen=True)
class ExportRequest:
    """What one export covers: its resource types (in order) and the ``_since`` bound."""

    types: tuple[str, ...]
    since: datetime | None


def parse(query: Mapping[str, str], served: Collection[str]) -> ExportRequest:
    """Validate the kick-off parameters against the ``served`` resource types."""
    for name in query:
        if name in NOT_SUPPORTED:
            raise FhirError(400, f"parameter {name} is not supported", code="not-supported")
        if name not in KNOWN:
            raise FhirError(400, f"unknown parameter {name}", code="not-supported")
    fmt = query.get("_outputFormat")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise FhirError(400, f"_outputFormat {fmt} is not supported", code="not-supported")
    types = tuple(served)
    if query.get("_type"):
        types = tuple(t.strip() for t in query["_type"].split(",") if t.strip())
        unknown = [t for t in types if t not in served]
        if unknown:
            raise FhirError(400, f"_type not served: {', '.join(unknown)}", code="not-supported")
    since = None
    if query.get("_since"):
        try:
            since = datetime.fromisoformat(query["_since"].replace("Z", "+00:00"))
        except ValueError:
            raise FhirError(400, "_since must be a FHIR instant") from None
        if since.tzinfo is None:
            raise FhirError(400, "_since must carry a time zone")
    return ExportRequest(types, since)
