"""Bodies of care-team changes and the team as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from services.api.schemas.common import WriteBase


class CareTeamChange(WriteBase):
    """Add an active nurse, physician or pharmacist, or remove a member (with a reason)."""

    user_id: UUID
    change: Literal["added", "removed"] = "added"

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11"},
                {
                    "user_id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11",
                    "change": "removed",
                    "reason": "transferred to another ward",
                },
            ]
        },
    )


class CareTeamMemberPublic(BaseModel):
    """One member of a patient's care team."""

    user_id: UUID
    added_at: datetime
    added_by: UUID
    encounter_id: UUID | None = None
    leaves_at: datetime | None = None
