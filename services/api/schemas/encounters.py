"""Bodies of encounter writes: start, transfer, update, end."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from events.domain.payloads.encounters import Disposition, EncounterClass
from services.api.schemas.common import WriteBase

ATTENDING = "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11"
WARD: dict[str, Any] = {"ward": "Cardiology", "room": "12", "bed": "B"}


class LocationBody(BaseModel):
    """A ward, and a room and a bed when known."""

    model_config = ConfigDict(extra="forbid")

    ward: str = Field(max_length=200)
    room: str | None = Field(default=None, max_length=200)
    bed: str | None = Field(default=None, max_length=200)


class EncounterStart(WriteBase):
    """Admit or check in the patient (none of their encounters may be open)."""

    encounter_class: EncounterClass
    location: LocationBody
    attending_id: UUID = Field(description="The attending physician; joins the care team.")
    consulting_ids: list[UUID] = Field(
        default_factory=list, max_length=20, description="Consulting physicians; join the team."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"encounter_class": "inpatient", "location": WARD, "attending_id": ATTENDING}
            ]
        },
    )


class EncounterTransfer(WriteBase):
    """Move the patient of an open encounter to another location."""

    location: LocationBody

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"location": {"ward": "ICU", "bed": "4"}}]},
    )


class EncounterUpdate(WriteBase):
    """Change the attending, the class or the consulting physicians of an open encounter."""

    attending_id: UUID | None = None
    encounter_class: EncounterClass | None = None
    consulting_added: list[UUID] = Field(default_factory=list, max_length=20)
    consulting_removed: list[UUID] = Field(default_factory=list, max_length=20)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"attending_id": ATTENDING},
                {"encounter_class": "inpatient"},
                {"consulting_added": [ATTENDING]},
            ]
        },
    )


class EncounterEnd(WriteBase):
    """Discharge: end an open encounter (``occurred_at`` is the discharge time)."""

    disposition: Disposition

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"disposition": "home"}]},
    )
