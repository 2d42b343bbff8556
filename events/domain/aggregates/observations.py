"""Vital signs: each recording is its own one-event stream, checked and flagged."""

from __future__ import annotations

from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads.observations import VitalsRecorded
from events.domain.rules.vitals import check_vitals


def record_vitals(values: dict[str, float | None]) -> VitalsRecorded:
    measured = {k: float(v) for k, v in values.items() if v is not None}
    if not measured:
        raise ClinicalRuleViolation("at least one vital sign is required", field="vitals")
    flags = check_vitals(measured)
    return VitalsRecorded.model_validate({**measured, "flags": dict(flags)})
