"""The base of every payload model: frozen, strict about unknown fields, versioned."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from events.domain.text import Note, Text

__all__ = ["DrugCode", "LoincCode", "NonEmpty", "Note", "Payload"]

# Every text field: NFC, no control characters, 1 to 200 characters (``events.domain.text``).
NonEmpty = Text
LoincCode = Annotated[str, StringConstraints(pattern=r"^\d{1,7}-\d$")]
DrugCode = Annotated[str, StringConstraints(pattern=r"^\d{1,10}$")]


class Payload(BaseModel):
    """A payload of one ``event_type`` at one ``schema_version``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
