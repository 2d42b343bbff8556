"""Bodies shared by every write."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class WriteBase(BaseModel):
    """Every write may carry the clinical time and a reason."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: AwareDatetime | None = Field(
        default=None, description="Clinical time (RFC 3339 with offset); defaults to now."
    )
    reason: str | None = Field(default=None, max_length=1000)


class Written(BaseModel):
    """What a write answers: the id created or changed and the store position."""

    id: UUID
    position: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11", "position": 42}]
        }
    )


def when(body: WriteBase) -> datetime | None:
    return body.occurred_at
