"""Bodies shared by every write."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from events.commands.base import CommandResult
from events.domain.text import clean_text

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("a time is an RFC 3339 string with an offset, e.g. 2026-03-01T09:00:00Z")
    return value


# A point in time as the API takes it: only an RFC 3339 string with an offset (pydantic would
# also take numbers and numeric strings as Unix times: ``0`` became 1970).
ClinicalTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


# Text the API reads from a query (a search name): the same characters as stored text, so a
# NUL or a bidirectional override is a 422, not a database error.
QueryText = Annotated[str, AfterValidator(clean_text)]


class WriteBase(BaseModel):
    """Every write may carry the clinical time and a reason."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: ClinicalTime | None = Field(
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
