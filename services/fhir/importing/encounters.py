"""Encounter → ``StartEncounter`` at ``period.start`` and, when it has ended, ``EndEncounter``
at ``period.end``.

FHIR encounters from outside name no ward of ours (Synthea's have no location at all): they
are placed on the import's ward (``--ward``, default ``OUTPATIENT``). The attending is a
``Practitioner/<backbone user id>`` participant when one is named, else the importer's
default (the operator, or the physician posting the Bundle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.fhir.importing.fields import Unmappable, instant, reference
from services.fhir.importing.reader import Resource

DEFAULT_WARD = "OUTPATIENT"
CLASSES = {
    "AMB": "outpatient",
    "OBSENC": "outpatient",
    "HH": "outpatient",
    "VR": "outpatient",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
    "EMER": "emergency",
}
DISPOSITIONS = {
    "home": "home",
    "alt-home": "home",
    "exp": "deceased",
    "aadvice": "left_against_advice",
    "other-hcf": "transfer",
    "hosp": "transfer",
    "long": "transfer",
    "snf": "transfer",
    "rehab": "transfer",
    "psy": "transfer",
}
ENDED = frozenset({"finished"})
OPEN = frozenset({"arrived", "triaged", "in-progress", "onleave"})


@dataclass(frozen=True)
class Visit:
    """What an Encounter asks for: its class, times, disposition and named attending."""

    encounter_class: str
    start: datetime
    end: datetime | None
    disposition: str
    attending: UUID | None


def _attending(resource: Resource) -> UUID | None:
    for participant in resource.get("participant") or []:
        ref = reference(participant.get("individual")) if isinstance(participant, dict) else None
        if ref and ref.startswith("Practitioner/"):
            try:
                return UUID(ref.removeprefix("Practitioner/"))
            except ValueError:
                continue
    return None


def _disposition(resource: Resource) -> str:
    stay = resource.get("hospitalization")
    concept = stay.get("dischargeDisposition") if isinstance(stay, dict) else None
    codes = [c.get("code") for c in (concept or {}).get("coding") or [] if isinstance(c, dict)]
    if not codes:
        return "home"  # a visit that says nothing of where the patient went
    return next((DISPOSITIONS[c] for c in codes if c in DISPOSITIONS), "other")


def visit(resource: Resource) -> Visit:
    """The encounter a FHIR Encounter describes, or ``Unmappable``."""
    status = resource.get("status")
    if status not in ENDED | OPEN:
        raise Unmappable(f"an Encounter with status {status!r} did not take place")
    kind = resource.get("class")
    code = kind.get("code") if isinstance(kind, dict) else None
    if code not in CLASSES:
        raise Unmappable(f"Encounter.class {code!r} is not one of {', '.join(CLASSES)}")
    given = resource.get("period")
    period: dict[str, object] = given if isinstance(given, dict) else {}
    start = instant(period.get("start"), "Encounter.period.start")
    if start is None:
        raise Unmappable("Encounter has no period.start")
    end = instant(period.get("end"), "Encounter.period.end") if status in ENDED else None
    if status in ENDED and end is None:
        raise Unmappable("a finished Encounter needs period.end")
    return Visit(CLASSES[code], start, end, _disposition(resource), _attending(resource))
