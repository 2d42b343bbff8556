"""The base of every payload model: frozen, strict about unknown fields, versioned."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LoincCode = Annotated[str, StringConstraints(pattern=r"^\d{1,7}-\d$")]
DrugCode = Annotated[str, StringConstraints(pattern=r"^\d{1,10}$")]


class Payload(BaseModel):
    """A payload of one ``event_type`` at one ``schema_version``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
