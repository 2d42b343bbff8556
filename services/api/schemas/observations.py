"""Bodies of body weight and height observations."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.api.schemas.common import WriteBase


class ObservationCreate(WriteBase):
    """Record a body weight (kg, g, lb) or height (cm, m, in)."""

    kind: Literal["body_weight", "body_height"]
    value: float = Field(gt=0, description="As measured, in ``unit``")
    unit: str = Field(
        min_length=1,
        max_length=10,
        description="kg, g or lb for a weight; cm, m or in for a height (UCUM [lb_av] and "
        "[in_i] are accepted too)",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "body_weight", "value": 72.5, "unit": "kg"}]},
    )


class ObservationWritten(BaseModel):
    """The observation's id and position, and the value as stored (kg or cm)."""

    id: UUID
    position: int
    kind: str
    value: float
    unit: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11",
                    "position": 42,
                    "kind": "body_weight",
                    "value": 69.853225,
                    "unit": "kg",
                }
            ]
        }
    )
