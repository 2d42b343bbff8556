"""Bodies of patient registration, search, merges, allergies, vitals and break-glass."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.api.schemas.common import WriteBase


class PatientCreate(WriteBase):
    """Register a patient under a medical record number."""

    mrn: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")
    family_name: str = Field(min_length=1, max_length=200)
    given_names: list[str] = Field(min_length=1, max_length=10)
    birth_date: date
    sex: Literal["female", "male", "other", "unknown"]

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "mrn": "MRN-004217",
                    "family_name": "Okafor",
                    "given_names": ["Ada"],
                    "birth_date": "1961-04-02",
                    "sex": "female",
                }
            ]
        },
    )


class PatientPublic(BaseModel):
    """Demographics only, as search answers them."""

    patient_id: UUID
    mrn: str
    family_name: str
    given_names: list[str]
    birth_date: date
    sex: str
    merged_into: UUID | None = Field(
        default=None,
        description=(
            "The record this one is merged into (its chart and new writes go there); the "
            "search answers that record too. Null: the record stands on its own."
        ),
    )


class MergeCreate(WriteBase):
    """Merge the record ``merged_id`` into this one (the survivor), or undo that merge; the
    reason is mandatory."""

    merged_id: UUID
    reason: str = Field(min_length=3, max_length=1000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "merged_id": "5f0e4c1a-7d2b-8e3f-9a41-b6c7d8e9f012",
                    "reason": "duplicate registration: same person, second MRN issued in ED",
                }
            ]
        },
    )


class AllergyCreate(WriteBase):
    """Record an allergy."""

    substance: str = Field(min_length=1, max_length=200)
    substance_code: str | None = Field(default=None, max_length=50)
    reaction: str = Field(min_length=1, max_length=200)
    severity: Literal["mild", "moderate", "severe"]
    criticality: Literal["low", "high", "unable-to-assess"] | None = Field(
        default=None,
        description=(
            "FHIR AllergyIntolerance criticality: the potential for a serious reaction in "
            "future (null: not stated)."
        ),
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "substance": "penicillin",
                    "reaction": "hives",
                    "severity": "moderate",
                    "criticality": "high",
                }
            ]
        },
    )


class AllergyStatusChange(WriteBase):
    """Inactivate an allergy, make an inactive one active again, or refute one (recorded in
    error); the reason is mandatory. Only active allergies screen prescriptions."""

    status: Literal["active", "inactive", "refuted"]
    reason: str = Field(min_length=3, max_length=1000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "inactive", "reason": "outgrown: tolerated a graded challenge"},
                {"status": "refuted", "reason": "recorded for the wrong patient"},
            ]
        },
    )


class NoKnownAllergiesCreate(WriteBase):
    """The patient has no known drug allergies (asked and answered); refused while an
    allergy is active."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class VitalsCreate(WriteBase):
    """Record vital signs; at least one."""

    heart_rate: float | None = Field(default=None, description="beats per minute")
    systolic_bp: float | None = Field(default=None, description="mm[Hg]")
    diastolic_bp: float | None = Field(default=None, description="mm[Hg]")
    temperature_c: float | None = Field(default=None, description="degrees Celsius")
    respiratory_rate: float | None = Field(default=None, description="breaths per minute")
    spo2: float | None = Field(default=None, description="% oxygen saturation")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"heart_rate": 88, "systolic_bp": 128, "diastolic_bp": 82, "spo2": 97}]
        },
    )


class VitalsWritten(BaseModel):
    """The vitals' id, position and the flags computed for them."""

    id: UUID
    position: int
    flags: dict[str, str]


class BreakGlassCreate(WriteBase):
    """Emergency access to a patient outside your care team; the reason is mandatory."""

    reason: str = Field(min_length=5, max_length=1000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "unresponsive patient in the emergency department"}]
        },
    )


class BreakGlassWritten(BaseModel):
    """The grant's id, position and when it expires."""

    id: UUID
    position: int
    expires_in_s: int
