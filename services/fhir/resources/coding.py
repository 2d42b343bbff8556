"""Pieces every resource is built from: instants, references, codings, ``meta``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
MRN_SYSTEM = "urn:backbone:mrn"
SUBSTANCE_SYSTEM = "urn:backbone:substance"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

Row = Mapping[str, Any]


def instant(moment: datetime) -> str:
    """A FHIR instant / dateTime: ISO 8601 with its zone."""
    return moment.isoformat()


def day(value: date) -> str:
    return value.isoformat()


def reference(kind: str, target: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{target}"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str | None, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding (when there is a code) and its text."""
    built: dict[str, Any] = {}
    if code:
        built["coding"] = [coding(system, code, text)]
    if text:
        built["text"] = text
    return built


def base(resource_type: str, row: Row, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """``resourceType``, ``id`` and ``meta`` (lastUpdated, and the profiles it claims)."""
    meta: dict[str, Any] = {"lastUpdated": instant(row["last_updated"])}
    if profiles:
        meta["profile"] = list(profiles)
    return {"resourceType": resource_type, "id": str(row["id"]), "meta": meta}


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    """The elements that have a value (FHIR has no nulls)."""
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}
