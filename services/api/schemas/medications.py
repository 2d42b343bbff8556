"""Bodies of prescriptions, changes, discontinuations and administrations."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from events.domain.payloads.medications import DoseUnit, Frequency, PositiveDose, Route
from services.api.schemas.common import ClinicalTime, WriteBase


class MedicationCreate(WriteBase):
    """Prescribe a drug (RxNorm ingredient code)."""

    drug_code: str = Field(pattern=r"^\d{1,10}$", description="RxNorm RXCUI")
    drug_name: str = Field(min_length=1, max_length=200)
    dose: PositiveDose
    dose_unit: DoseUnit
    route: Route
    frequency: Frequency = Field(
        description="once, daily, bid, tid, qid, qNh, prn, qNh prn, weekly, at bedtime, stat"
    )
    override_reason: str | None = Field(default=None, max_length=1000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "drug_code": "29046",
                    "drug_name": "lisinopril",
                    "dose": 10,
                    "dose_unit": "mg",
                    "route": "oral",
                    "frequency": "daily",
                }
            ]
        },
    )


class MedicationChange(WriteBase):
    """Change dose or frequency; the reason is mandatory."""

    dose: PositiveDose | None = None
    dose_unit: DoseUnit | None = None
    frequency: Frequency | None = None
    override_reason: str | None = Field(default=None, max_length=1000)
    reason: str = Field(min_length=3, max_length=1000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"dose": 20, "reason": "blood pressure above target"}]},
    )


class Discontinue(WriteBase):
    """Stop the medication; the reason is mandatory."""

    reason: str = Field(min_length=3, max_length=1000)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "course complete"}]}
    )


class AdministrationCreate(WriteBase):
    """A dose was given (route and unit default to the order's)."""

    dose: PositiveDose
    dose_unit: DoseUnit | None = None
    route: Route | None = None
    administered_at: ClinicalTime | None = None
    override_reason: str | None = Field(
        default=None,
        max_length=1000,
        description=(
            "Why a non-standard dose is given; required (else 422) when the order is "
            "discontinued, rejected or not yet verified by pharmacy, or the dose differs "
            "from the ordered one. Recorded with the administration."
        ),
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"dose": 10},
                {"dose": 10, "override_reason": "first dose before verification (urgent)"},
            ]
        },
    )
