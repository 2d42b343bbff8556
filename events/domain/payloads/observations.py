"""Payloads of observations: vital signs.

``vitals.recorded`` v1 carried blood pressure as one ``"120/80"`` string and no flags;
v2 splits it into ``systolic_bp`` / ``diastolic_bp`` and stores the flags that clinicians
were shown. Stored v1 events are upcast on read (see ``events.domain.contract``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from events.domain.payloads.base import Payload

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
