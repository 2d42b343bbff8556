"""Commands about observations: vital signs, each recording a one-event stream; body weight
and height, one stream per patient (``body_measurements_id``) so that the latest weight is
read from the store by the dose checks. Two measurements of one patient saved at the same
moment race for that stream: one of them is refused (409) and is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from events.commands.base import CommandContext, CommandResult, JsonDict, command
from events.commands.context import ClinicalContext
from events.domain.aggregates import observations
from events.domain.errors import ConflictError
from events.domain.payloads.observations import ObservationRecorded, VitalsRecorded


@dataclass(frozen=True)
class RecordVitals:
    """Vital signs measured together; at least one is required."""

    patient_id: UUID
    heart_rate: float | None = None
    systolic_bp: float | None = None
    diastolic_bp: float | None = None
    temperature_c: float | None = None
    respiratory_rate: float | None = None
    spo2: float | None = None

    def values(self) -> dict[str, float | None]:
        return {
            "heart_rate": self.heart_rate,
            "systolic_bp": self.systolic_bp,
            "diastolic_bp": self.diastolic_bp,
            "temperature_c": self.temperature_c,
            "respiratory_rate": self.respiratory_rate,
            "spo2": self.spo2,
        }


@dataclass(frozen=True)
class RecordObservation:
    """A body weight (kg, g, lb) or height (cm, m, in); stored in kg or cm, as measured too."""

    patient_id: UUID
    kind: Literal["body_weight", "body_height"]
    value: float
    unit: str


def _flags(payload: VitalsRecorded) -> JsonDict:
    return {"flags": payload.flags}


def _measured(payload: ObservationRecorded) -> JsonDict:
    return {"kind": payload.kind, "value": payload.value, "unit": payload.unit}


class ObservationCommands(ClinicalContext):
    """The write API of observations."""

    @command
    def record_vitals(self, ctx: CommandContext, cmd: RecordVitals) -> CommandResult:
        vitals_id = self.new_id()

        def decide(_: datetime) -> VitalsRecorded:
            self.patient(cmd.patient_id)
            return observations.record_vitals(cmd.values())

        return self.start(ctx, vitals_id, cmd.patient_id, decide, detail=_flags)

    @command
    def record_observation(self, ctx: CommandContext, cmd: RecordObservation) -> CommandResult:
        """Record a body weight or height in the patient's open encounter; an implausible
        value (weight 0.2-650 kg, height 20-280 cm) or a unit of the other measure is
        refused."""
        stream = self.body_measurements_id(cmd.patient_id)
        observation_id = self.new_id()

        def decide(_: observations.BodyMeasurements | None, __: datetime) -> ObservationRecorded:
            self.patient(cmd.patient_id)
            encounter_id = self.open_encounter_id(cmd.patient_id)
            return observations.record_body_measure(
                observation_id, cmd.kind, cmd.value, cmd.unit, encounter_id
            )

        return self.change(
            ctx,
            stream,
            lambda: self.body_measurements(cmd.patient_id),
            decide,
            cmd.patient_id,
            result_id=observation_id,
            detail=_measured,
            on_conflict=ConflictError(
                "another measurement of the patient was recorded meanwhile; send it again"
            ),
        )
