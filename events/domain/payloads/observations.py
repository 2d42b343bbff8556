"""Payloads of observations: vital signs, body weight and height.

``vitals.recorded`` v1 carried blood pressure as one ``"120/80"`` string and no flags;
v2 splits it into ``systolic_bp`` / ``diastolic_bp`` and stores the flags that clinicians
were shown. Stored v1 events are upcast on read (see ``events.domain.contract``).
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from events.domain.payloads.base import LoincCode, Payload

Measured = Annotated[float, Field(ge=0, le=1000)]


class VitalsRecordedV1(Payload):
    """Vital signs as first recorded (blood pressure as "systolic/diastolic")."""

    event_type = "vitals.recorded"
    schema_version = 1

    heart_rate: Measured | None = None
    blood_pressure: str | None = Field(default=None, pattern=r"^\d{1,3}/\d{1,3}$")
    temperature_c: Measured | None = None
    respiratory_rate: Measured | None = None
    spo2: Measured | None = None


class VitalsRecorded(Payload):
    """Vital signs with the abnormal flags computed when they were recorded."""

    event_type = "vitals.recorded"
    schema_version = 2

    heart_rate: Measured | None = None
    systolic_bp: Measured | None = None
    diastolic_bp: Measured | None = None
    temperature_c: Measured | None = None
    respiratory_rate: Measured | None = None
    spo2: Measured | None = None
    flags: dict[str, Literal["L", "H"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _measures_something(self) -> VitalsRecorded:
        if not self.values():
            raise ValueError("vitals need at least one measurement")
        return self

    def values(self) -> dict[str, float]:
        """The measured vital signs, by name."""
        return {
            name: value
            for name in (
                "heart_rate",
                "systolic_bp",
                "diastolic_bp",
                "temperature_c",
                "respiratory_rate",
                "spo2",
            )
            if (value := getattr(self, name)) is not None
        }


BodyMeasure = Literal["body_weight", "body_height"]
# The unit each is stored in, and the LOINC code it is recorded under.
CANONICAL_UNIT: dict[str, str] = {"body_weight": "kg", "body_height": "cm"}
LOINC: dict[str, str] = {"body_weight": "29463-7", "body_height": "8302-2"}
# The units accepted (as normalised: "lbs" and UCUM "[lb_av]" are recorded as "lb").
BodyUnit = Literal["kg", "g", "lb", "cm", "m", "in"]


class ObservationRecorded(Payload):
    """A body weight (LOINC 29463-7) or height (LOINC 8302-2) was measured.

    ``value`` is in kg (weight) or cm (height), the units dose checks and the chart use;
    ``original_value`` and ``original_unit`` are what was measured (e.g. 154 lb). The
    patient's measurements share one stream: ``observation_id`` names this one.
    """

    event_type = "observation.recorded"

    observation_id: UUID
    kind: BodyMeasure
    code: LoincCode
    value: float = Field(gt=0, le=1000)
    unit: Literal["kg", "cm"]
    original_value: float = Field(gt=0, le=1_000_000)
    original_unit: BodyUnit
    # The patient's open encounter when it was measured (None: none was open).
    encounter_id: UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ObservationRecorded:
        if self.code != LOINC[self.kind] or self.unit != CANONICAL_UNIT[self.kind]:
            wanted = f"LOINC {LOINC[self.kind]} in {CANONICAL_UNIT[self.kind]}"
            raise ValueError(f"{self.kind} is {wanted}")
        return self
