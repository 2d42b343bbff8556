"""Bodies of lab orders, specimens, results and cancellations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
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


ReportedValueIn = Annotated[
    float | Annotated[str, Field(min_length=1, max_length=1000)],
    Field(
        description="A number, or the text the lab reported: a comparator value such as "
        "`<0.01` or `>1000` (kept, flagged only when unambiguous) or text such as `positive` "
        "(never flagged)."
    ),
]


class AnalyteIn(BaseModel):
    """One analyte result as the lab reports it."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{1,7}-\d$", description="LOINC code")
    name: str = Field(min_length=1, max_length=200)
    value: ReportedValueIn
    unit: str | None = Field(
        default=None,
        min_length=1,
        max_length=30,
        description="UCUM unit; required for a numeric value, optional for text",
    )
    reference_low: float | None = None
    reference_high: float | None = None
    status: Literal["preliminary", "final", "corrected"] = Field(
        default="final", description="preliminary or final; a correction is an amendment"
    )


class AmendCreate(WriteBase):
    """A new value of one result: finalises a preliminary result, or corrects a final one
    (a correction needs a reason). ``status`` defaults to final / corrected accordingly."""

    value: ReportedValueIn
    unit: str | None = Field(default=None, min_length=1, max_length=30)
    reference_low: float | None = None
    reference_high: float | None = None
    status: Literal["preliminary", "final", "corrected"] | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "value": 7.4,
                    "unit": "mmol/L",
                    "reference_low": 3.5,
                    "reference_high": 5.1,
                    "reason": "specimen re-run: haemolysis ruled out",
                }
            ]
        },
    )


class AmendWritten(BaseModel):
    """The amended result's id, the store position, its new flag and status."""

    id: UUID
    position: int
    flag: str | None
    status: str


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
                        },
                        {
                            "code": "10839-9",
                            "name": "Troponin I",
                            "value": "<0.01",
                            "unit": "ng/mL",
                            "reference_high": 0.04,
                            "status": "preliminary",
                        },
                    ]
                }
            ]
        },
    )


class ResultFlag(BaseModel):
    """One result's flag (None: no numeric flag applies), status and value type."""

    result_id: UUID
    code: str
    flag: str | None
    status: str = "final"
    value_type: str = "numeric"
    comparator: str | None = None


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
