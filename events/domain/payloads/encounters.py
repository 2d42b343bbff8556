"""Payloads of encounters: a patient's stay or visit, started, moved, changed and ended.

Each encounter is its own stream on ``clinical.patients``; the envelope's ``occurred_at``
is when it was started (admitted), moved, changed or ended (discharged).
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator

from events.domain.payloads.base import NonEmpty, Payload

EncounterClass = Literal["inpatient", "outpatient", "emergency"]
Disposition = Literal["home", "transfer", "deceased", "left_against_advice", "other"]


class Location(BaseModel):
    """Where the patient is: a ward, and a room and a bed when known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ward: NonEmpty
    room: NonEmpty | None = None
    bed: NonEmpty | None = None


class EncounterStarted(Payload):
    """The patient was admitted or checked in, under an attending physician."""

    event_type = "encounter.started"

    encounter_class: EncounterClass
    location: Location
    attending_id: UUID
    consulting_ids: tuple[UUID, ...] = ()


class EncounterTransferred(Payload):
    """The patient moved to another location within the encounter."""

    event_type = "encounter.transferred"

    location: Location


class EncounterUpdated(Payload):
    """The attending physician, the class or the consulting physicians of the encounter
    changed; absent is unchanged."""

    event_type = "encounter.updated"

    attending_id: UUID | None = None
    encounter_class: EncounterClass | None = None
    consulting_added: tuple[UUID, ...] = ()
    consulting_removed: tuple[UUID, ...] = ()

    @model_validator(mode="after")
    def _changes_something(self) -> EncounterUpdated:
        if (
            self.attending_id is None
            and self.encounter_class is None
            and not self.consulting_added
            and not self.consulting_removed
        ):
            raise ValueError(
                "an encounter update must change the attending, the class or the consultants"
            )
        return self


class EncounterEnded(Payload):
    """The patient was discharged (or left): how the encounter ended."""

    event_type = "encounter.ended"

    disposition: Disposition
