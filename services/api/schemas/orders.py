"""Bodies of lab orders, specimens, results and cancellations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.api.schemas.common import ClinicalTime, WriteBase


class OrderCreate(WriteBase):
    """Order a lab test by LOINC code."""

    test_code: str = Field(pattern=r"^\d{1,7}-\d$", description="LOINC code")
    test_name: str = Field(min_length=1, max_length=200)
    priority: Literal["routine", "urgent", "stat"] = "routine"

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"test_code": "2823-3", "test_name": "Potassium", "priority": "stat"}]
        },
    )


class SpecimenCreate(WriteBase):
    """The specimen was collected (defaults to now)."""

    collected_at: ClinicalTime | None = None
    specimen_type: str | None = Field(default=None, max_length=100)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class AnalyteIn(BaseModel):
    """One analyte result as the lab reports it."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{1,7}-\d$", description="LOINC code")
    name: str = Field(min_length=1, max_length=200)
    value: float
    unit: str = Field(min_length=1, max_length=30, description="UCUM unit")
    reference_low: float | None = None
    reference_high: float | None = None


class ResultsCreate(WriteBase):
    """Results per analyte; flags are computed from the range and critical limits."""

    results: list[AnalyteIn] = Field(min_length=1, max_length=100)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "code": "2823-3",
                            "name": "Potassium",
                            "value": 6.9,
                            "unit": "mmol/L",
                            "reference_low": 3.5,
                            "reference_high": 5.1,
                        }
                    ]
                }
            ]
        },
    )


class ResultFlag(BaseModel):
    result_id: UUID
    code: str
    flag: str


class ResultsWritten(BaseModel):
    """The order's id, position and each result's flag."""

    id: UUID
    position: int
    results: list[ResultFlag]


class CancelCreate(WriteBase):
    """Cancel an order; the reason is mandatory."""

    reason: str = Field(min_length=3, max_length=1000)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "duplicate order"}]}
    )


def collected_at(body: SpecimenCreate) -> datetime | None:
    return body.collected_at
