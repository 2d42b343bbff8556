"""Encounters: one stream per stay or visit of a patient, at most one open at a time.

The decisions are pure: they are given the encounter's state (and, to start one, the
patient's open encounter and the attending as the store knows them) and return a payload or
raise ``ClinicalRuleViolation``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    consulting: frozenset[UUID] = frozenset()

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
            consulting=frozenset(payload.consulting_ids),
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
            consulting=(state.consulting | set(payload.consulting_added))
            - set(payload.consulting_removed),
        )
    if isinstance(payload, enc.EncounterEnded):
        return replace(
            state, version=version, ended_at=event.occurred_at, disposition=payload.disposition
        )
    raise ValueError(f"an encounter cannot apply {event.event_type}")


def _check_physician(
    physician: TeamMember | None, user_id: UUID, who: str = "attending", field: str = "attending_id"
) -> None:
    if physician is None:
        raise ClinicalRuleViolation(f"there is no user {user_id}", field=field)
    if physician.role != "physician":
        raise ClinicalRuleViolation(
            f"the {who} must be a physician, not a {physician.role}", field=field
        )
    if not physician.active:
        raise ClinicalRuleViolation(f"the {who} physician is deactivated", field=field)


def _check_consultants(consultants: Mapping[UUID, TeamMember | None]) -> None:
    for user_id, member in consultants.items():
        _check_physician(member, user_id, "consulting", "consulting_ids")


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
    consultants: Mapping[UUID, TeamMember | None] | None = None,
) -> enc.EncounterStarted:
    """Start an encounter: none may be open for the patient; the attending and the
    consultants are active physicians."""
    if current is not None and current.open:
        raise ClinicalRuleViolation(
            f"the patient already has an open encounter ({current.id}); end it first",
            field="patient_id",
        )
    _check_physician(attending, attending_id)
    _check_consultants(consultants or {})
    return enc.EncounterStarted.model_validate(
        {
            "encounter_class": encounter_class,
            "location": location,
            "attending_id": attending_id,
            "consulting_ids": sorted(set(consultants or {}) - {attending_id}, key=str),
        }
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
    consultants_added: Mapping[UUID, TeamMember | None] | None = None,
    consultants_removed: frozenset[UUID] = frozenset(),
) -> enc.EncounterUpdated:
    """Change the attending, the class or the consulting physicians of an open encounter;
    something must change."""
    _require_open(encounter, "update")
    new_attending = attending_id if attending_id != encounter.attending_id else None
    new_class = encounter_class if encounter_class != encounter.encounter_class else None
    added = {u: m for u, m in (consultants_added or {}).items() if u not in encounter.consulting}
    not_consulting = consultants_removed - encounter.consulting
    if not_consulting:
        raise ClinicalRuleViolation(
            f"{sorted(map(str, not_consulting))[0]} is not consulting on this encounter",
            field="consulting_removed",
        )
    if new_attending is None and new_class is None and not added and not consultants_removed:
        raise ClinicalRuleViolation(
            "an encounter update must change the attending, the class or the consultants",
            field="attending_id",
        )
    if new_attending is not None:
        _check_physician(attending, new_attending)
    _check_consultants(added)
    return enc.EncounterUpdated.model_validate(
        {
            "attending_id": new_attending,
            "encounter_class": new_class,
            "consulting_added": sorted(added, key=str),
            "consulting_removed": sorted(consultants_removed, key=str),
        }
    )


def end(encounter: Encounter, disposition: str) -> enc.EncounterEnded:
    """Discharge: end an open encounter with its disposition."""
    _require_open(encounter, "end")
    return enc.EncounterEnded.model_validate({"disposition": disposition})
