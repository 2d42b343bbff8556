"""Putting an input's resources in the order the backbone needs them.

Patients first. Then, per patient, each encounter in time order with what happened in it
(observations, lab reports, prescriptions, allergies referencing it), so that each lands in
its encounter while it is open and the next starts once it has ended; what references no
encounter comes last, in time order. A DiagnosticReport groups the lab Observations it
lists into one order; a lab Observation no report lists is an order of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.fhir.importing.fields import Unmappable, effective, instant, reference
from services.fhir.importing.observations import category
from services.fhir.importing.reader import Entry

CLINICAL = frozenset({"Observation", "DiagnosticReport", "MedicationRequest", "AllergyIntolerance"})
IMPORTED = CLINICAL | {"Patient", "Encounter"}
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class Work:
    """One unit of work: a resource (a lab report with its results) and when it happened."""

    entry: Entry
    kind: str  # vitals, lab, medication, allergy
    at: datetime
    results: list[Entry] = field(default_factory=list)


@dataclass
class Visit:
    """An encounter entry and the work that happened in it."""

    entry: Entry
    at: datetime
    work: list[Work] = field(default_factory=list)


@dataclass
class Plan:
    """What to run, in order; and what is not mappable before anything runs (and why)."""

    patients: list[Entry] = field(default_factory=list)
    visits: dict[str, list[Visit]] = field(default_factory=dict)  # by subject reference
    loose: dict[str, list[Work]] = field(default_factory=dict)
    unmappable: list[tuple[Entry, str]] = field(default_factory=list)


def _when(entry: Entry) -> datetime:
    resource = entry.resource
    try:
        if entry.resource_type == "MedicationRequest":
            found = instant(resource.get("authoredOn"), "authoredOn")
        elif entry.resource_type == "AllergyIntolerance":
            found = instant(resource.get("recordedDate") or resource.get("onsetDateTime"), "date")
        elif entry.resource_type == "Encounter":
            period = resource.get("period") or {}
            found = instant(period.get("start"), "period.start")
        else:
            found = effective(resource)
    except Unmappable:
        found = None
    return found or _NEVER


def _is_lab(entry: Entry) -> bool:
    return category(entry.resource) == "laboratory"


def plan(entries: tuple[Entry, ...]) -> Plan:
    """The plan of an input (references are those the input uses: fullUrl or Type/id)."""
    found = Plan()
    by_name = {name: e for e in entries for name in e.names()}
    grouped: set[int] = set()
    work: list[Work] = []
    for entry in entries:
        kind = entry.resource_type
        if kind not in IMPORTED:
            found.unmappable.append((entry, f"{kind} is not imported"))
        elif kind == "Patient":
            found.patients.append(entry)
        elif kind == "DiagnosticReport":
            results = [by_name.get(reference(r) or "") for r in entry.resource.get("result") or []]
            labs = [r for r in results if r is not None and _is_lab(r)]
            if not labs:
                found.unmappable.append((entry, "a DiagnosticReport without lab results"))
                continue
            grouped.update(r.index for r in labs)
            work.append(Work(entry, "lab", _when(entry), labs))
    for entry in entries:
        kind = entry.resource_type
        if kind == "Observation" and entry.index not in grouped:
            observed = category(entry.resource)
            if observed == "vital-signs":
                work.append(Work(entry, "vitals", _when(entry)))
            elif observed == "laboratory":
                work.append(Work(entry, "lab", _when(entry), [entry]))
            else:
                reason = f"an Observation of category {observed!r} is not imported"
                found.unmappable.append((entry, reason))
        elif kind == "MedicationRequest":
            work.append(Work(entry, "medication", _when(entry)))
        elif kind == "AllergyIntolerance":
            work.append(Work(entry, "allergy", _when(entry)))
    visits: dict[int, Visit] = {}
    for entry in entries:
        if entry.resource_type == "Encounter":
            subject = reference(entry.resource.get("subject")) or ""
            visit = Visit(entry, _when(entry))
            visits[entry.index] = visit
            found.visits.setdefault(subject, []).append(visit)
    for item in work:
        named = item.entry.resource
        patient = reference(named.get("subject") or named.get("patient")) or ""
        encounter = by_name.get(reference(item.entry.resource.get("encounter")) or "")
        if encounter is not None and encounter.index in visits:
            visits[encounter.index].work.append(item)
        else:
            found.loose.setdefault(patient, []).append(item)
    for listed in found.visits.values():
        listed.sort(key=lambda v: (v.at, v.entry.index))
        for visit in listed:
            visit.work.sort(key=lambda w: (w.at, w.entry.index))
    for loose in found.loose.values():
        loose.sort(key=lambda w: (w.at, w.entry.index))
    return found
