"""Reading FHIR datatypes: codings, quantities, times and references, and ``Unmappable``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from services.fhir.importing.reader import Resource

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


class Unmappable(Exception):
    """A resource the backbone cannot hold, and why (the report shows the reason)."""


def codings(concept: object) -> Iterator[dict[str, Any]]:
    """The codings of a CodeableConcept (none when it is not one)."""
    if isinstance(concept, dict):
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield coding


def code_in(concept: object, system: str) -> str | None:
    """The first code of ``system`` in a CodeableConcept."""
    return next((str(c["code"]) for c in codings(concept) if c.get("system") == system), None)


def display(concept: object, fallback: str) -> str:
    """What a CodeableConcept calls its concept: its text, else a coding's display."""
    if isinstance(concept, dict):
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            return text.strip()
    for coding in codings(concept):
        shown = coding.get("display")
        if isinstance(shown, str) and shown.strip():
            return shown.strip()
    return fallback


def any_code(concept: object) -> str | None:
    """The first code of a CodeableConcept, whatever its system."""
    return next((str(c["code"]) for c in codings(concept)), None)


def instant(value: object, where: str) -> datetime | None:
    """A FHIR dateTime or instant (a date alone is its midnight UTC); None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unmappable(f"{where} is not a dateTime")
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unmappable(f"{where} {value!r} is not a FHIR dateTime") from None
    if parsed.tzinfo is None:
        raise Unmappable(f"{where} has a time but no time zone")
    return parsed


def effective(resource: Resource) -> datetime | None:
    """When an observation or report applies: effective[x], else issued."""
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and period.get("start"):
        return instant(period["start"], "effectivePeriod.start")
    if resource.get("effectiveDateTime"):
        return instant(resource["effectiveDateTime"], "effectiveDateTime")
    return instant(resource.get("issued"), "issued")


def reference(value: object) -> str | None:
    """The reference string of a Reference."""
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def quantity(value: object, where: str) -> tuple[float, str | None]:
    """A Quantity's value and UCUM unit (its ``code``, else its ``unit``)."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), int | float):
        raise Unmappable(f"{where} has no numeric value")
    unit = value.get("code") or value.get("unit")
    return float(value["value"]), str(unit) if unit else None
