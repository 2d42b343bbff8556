"""Encounters: one stream per stay or visit of a patient, at most one open at a time.

The decisions are pure: they are given the encounter's state (and, to start one, the
patient's open encounter and the attending as the store knows them) and return a payload or
raise ``ClinicalRuleViolation``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from events.domain.aggregates.access import TeamMember
from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads import encounters as enc


@dataclass(frozen=True)
class Place:
    """A location of an encounter, as the state keeps it."""

    ward: str
    room: str | None = None
    bed: str | None = None

    @classmethod
    def of(cls, location: enc.Location) -> Place:
        return cls(location.ward, location.room, location.bed)


@dataclass(frozen=True)
class Encounter:
    """An encounter: its patient, class, location, attending, and how it ended (if it did)."""

    id: UUID
    version: int
    patient_id: UUID
    encounter_class: str
    location: Place
    attending_id: UUID
    started_at: datetime
    ended_at: datetime | None = None
    disposition: str | None = None

    @property
    def open(self) -> bool:
        return self.ended_at is None


def evolve(state: Encounter | None, event: ClinicalEvent) -> Encounter:
    payload = event.payload
    version = event.originator_version
    if isinstance(payload, enc.EncounterStarted):
        if event.patient_id is None:
            raise ValueError("an encounter belongs to a patient")
        return Encounter(
            event.originator_id,
            version,
            event.patient_id,
            payload.encounter_class,
            Place.of(payload.location),
            payload.attending_id,
            event.occurred_at,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before encounter.started")
    if isinstance(payload, enc.EncounterTransferred):
        return replace(state, version=version, location=Place.of(payload.location))
    if isinstance(payload, enc.EncounterUpdated):
        return replace(
            state,
            version=version,
            attending_id=payload.attending_id or state.attending_id,
            encounter_class=payload.encounter_class or state.encounter_class,
        )
    if isinstance(payload, enc.EncounterEnded):
        return replace(
            state, version=version, ended_at=event.occurred_at, disposition=payload.disposition
        )
    raise ValueError(f"an encounter cannot apply {event.event_type}")


def _check_attending(attending: TeamMember | None, attending_id: UUID) -> None:
    if attending is None:
        raise ClinicalRuleViolation(f"there is no user {attending_id}", field="attending_id")
    if attending.role != "physician":
        raise ClinicalRuleViolation(
            f"the attending must be a physician, not a {attending.role}", field="attending_id"
        )
    if not attending.active:
        raise ClinicalRuleViolation("the attending physician is deactivated", field="attending_id")


def _require_open(encounter: Encounter, doing: str) -> None:
    if not encounter.open:
        raise ClinicalRuleViolation(
            f"encounter {encounter.id} has ended; cannot {doing} it", field="encounter_id"
        )


def start(
    current: Encounter | None,
    attending: TeamMember | None,
    attending_id: UUID,
    encounter_class: str,
    location: dict[str, Any],
) -> enc.EncounterStarted:
    """Start an encounter: none may be open for the patient; the attending is an active
    physician."""
    if current is not None and current.open:
        raise ClinicalRuleViolation(
            f"the patient already has an open encounter ({current.id}); end it first",
            field="patient_id",
        )
    _check_attending(attending, attending_id)
    return enc.EncounterStarted.model_validate(
        {"encounter_class": encounter_class, "location": location, "attending_id": attending_id}
    )


def transfer(encounter: Encounter, location: dict[str, Any]) -> enc.EncounterTransferred:
    """Move the patient of an open encounter to another location."""
    _require_open(encounter, "transfer")
    transferred = enc.EncounterTransferred.model_validate({"location": location})
    if Place.of(transferred.location) == encounter.location:
        raise ClinicalRuleViolation("the patient is already at this location", field="location")
    return transferred


def update(
    encounter: Encounter,
    attending: TeamMember | None,
    attending_id: UUID | None,
    encounter_class: str | None,
) -> enc.EncounterUpdated:
    """Change the attending and/or the class of an open encounter; something must change."""
    _require_open(encounter, "update")
    new_attending = attending_id if attending_id != encounter.attending_id else None
    new_class = encounter_class if encounter_class != encounter.encounter_class else None
    if new_attending is None and new_class is None:
        raise ClinicalRuleViolation(
            "an encounter update must change the attending or the class", field="attending_id"
        )
    if new_attending is not None:
        _check_attending(attending, new_attending)
    return enc.EncounterUpdated.model_validate(
        {"attending_id": new_attending, "encounter_class": new_class}
    )


def end(encounter: Encounter, disposition: str) -> enc.EncounterEnded:
    """Discharge: end an open encounter with its disposition."""
    _require_open(encounter, "end")
    return enc.EncounterEnded.model_validate({"disposition": disposition})
