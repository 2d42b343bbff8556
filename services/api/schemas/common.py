"""Bodies shared by every write."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.commands.base import CommandResult


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

    @classmethod
    def of(cls, result: CommandResult) -> Written:
        return cls(id=result.id, position=result.position)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11", "position": 42}]
        }
    )
