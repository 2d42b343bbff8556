"""Observations: vital signs, and body weight and height.

Each vitals recording is its own one-event stream, checked and flagged. A patient's body
weights and heights are one stream per patient (``body_measurements``), so a command that
needs the latest weight (a per-kg dose check) loads it from the store: it is the one with
the latest clinical time (on a tie, the one recorded last).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final
from uuid import UUID

from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError, UnknownUnitError
from events.domain.payloads import observations as obs
from events.domain.payloads.observations import VitalsRecorded
from events.domain.rules.vitals import check_vitals

# Unit spellings accepted per measure: the normalised unit and its factor to kg or cm.
# 1 lb = 0.45359237 kg and 1 in = 2.54 cm exactly (international yard and pound, 1959).
_UNITS: Final[dict[str, dict[str, tuple[str, float]]]] = {
    "body_weight": {
        "kg": ("kg", 1.0),
        "g": ("g", 0.001),
        "lb": ("lb", 0.45359237),
        "lbs": ("lb", 0.45359237),
        "[lb_av]": ("lb", 0.45359237),
    },
    "body_height": {
        "cm": ("cm", 1.0),
        "m": ("m", 100.0),
        "in": ("in", 2.54),
        "[in_i]": ("in", 2.54),
    },
}
# What a living patient can measure, in kg and cm (a 0.2 kg extremely premature neonate to
# the heaviest and tallest people recorded); outside is a typo or a unit mistake.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "body_weight": (0.2, 650.0),
    "body_height": (20.0, 280.0),
}


def record_vitals(values: dict[str, float | None]) -> VitalsRecorded:
    measured = {k: float(v) for k, v in values.items() if v is not None}
    if not measured:
        raise ClinicalRuleViolation("at least one vital sign is required", field="vitals")
    flags = check_vitals(measured)
    return VitalsRecorded.model_validate({**measured, "flags": dict(flags)})


def record_body_measure(
    observation_id: UUID, kind: str, value: float, unit: str, encounter_id: UUID | None
) -> obs.ObservationRecorded:
    """A weight (kg, g, lb) or height (cm, m, in), normalised to kg or cm; refused when the
    unit does not fit the measure or the value is implausible for a living patient."""
    units = _UNITS.get(kind)
    if units is None:
        raise ClinicalRuleViolation(
            f"unknown observation {kind!r}: body_weight or body_height", field="kind"
        )
    spelling = unit.strip()
    found = units.get(spelling) or units.get(spelling.lower())
    if found is None:
        raise UnknownUnitError(
            f"{kind} is measured in {', '.join(u for u in units if not u.startswith('['))}, "
            f"not {spelling!r}",
            field="unit",
        )
    original_unit, factor = found
    if not (value > 0 and value < float("inf")):
        raise ImpossibleValueError(f"{kind} must be a positive number", field="value")
    normalised = round(value * factor, 6)
    low, high = PLAUSIBLE[kind]
    canonical = obs.CANONICAL_UNIT[kind]
    if not low <= normalised <= high:
        raise ImpossibleValueError(
            f"{kind} {value:g} {original_unit} ({normalised:g} {canonical}) is outside "
            f"{low:g}-{high:g} {canonical}",
            field="value",
        )
    return obs.ObservationRecorded.model_validate(
        {
            "observation_id": observation_id,
            "kind": kind,
            "code": obs.LOINC[kind],
            "value": normalised,
            "unit": canonical,
            "original_value": value,
            "original_unit": original_unit,
            "encounter_id": encounter_id,
        }
    )


@dataclass(frozen=True)
class Measured:
    """One body measurement as the state keeps it: in kg or cm, and when it was taken."""

    value: float
    unit: str
    at: datetime


@dataclass(frozen=True)
class BodyMeasurements:
    """A patient's latest body weight and height (None: never recorded)."""

    id: UUID
    version: int
    patient_id: UUID
    weight: Measured | None = None
    height: Measured | None = None

    @property
    def weight_kg(self) -> float | None:
        return self.weight.value if self.weight is not None else None


def _later(current: Measured | None, new: Measured) -> Measured:
    """The measurement with the later clinical time; a tie goes to the one recorded last."""
    return new if current is None or new.at >= current.at else current


def evolve(state: BodyMeasurements | None, event: ClinicalEvent) -> BodyMeasurements:
    payload = event.payload
    if not isinstance(payload, obs.ObservationRecorded):
        raise ValueError(f"a body measurement stream cannot apply {event.event_type}")
    if event.patient_id is None:
        raise ValueError("observation.recorded without a patient")
    if state is None:
        state = BodyMeasurements(event.originator_id, 0, event.patient_id)
    new = Measured(payload.value, payload.unit, event.occurred_at)
    state = replace(state, version=event.originator_version)
    if payload.kind == "body_weight":
        return replace(state, weight=_later(state.weight, new))
    return replace(state, height=_later(state.height, new))
