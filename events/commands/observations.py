"""Commands about observations: vital signs, each recording a one-event stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, JsonDict, command
from events.domain.aggregates import observations
from events.domain.payloads.observations import VitalsRecorded


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


def _flags(payload: VitalsRecorded) -> JsonDict:
    return {"flags": payload.flags}


class ObservationCommands(CommandCore):
    """The write API of observations."""

    @command
    def record_vitals(self, ctx: CommandContext, cmd: RecordVitals) -> CommandResult:
        vitals_id = self.new_id()

        def decide(_: datetime) -> VitalsRecorded:
            self.patient(cmd.patient_id)
            return observations.record_vitals(cmd.values())

        return self.start(ctx, vitals_id, cmd.patient_id, decide, detail=_flags)
