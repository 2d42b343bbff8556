"""Checks of a set of vital signs: impossible values refused, out-of-normal values flagged."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError
from events.domain.rules.reference import vital_signs

__all__ = ["VITAL_NAMES", "VitalFlag", "check_vitals"]

VITAL_NAMES: tuple[str, ...] = (
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "temperature_c",
    "respiratory_rate",
    "spo2",
)

VitalFlag = Literal["L", "H"]


def check_vitals(values: Mapping[str, float]) -> dict[str, VitalFlag]:
    """Flags ("L"/"H") of the values outside the normal adult range, by vital name.

    Refuses an empty set, an unknown name, a value outside the possible range
    (``ImpossibleValueError`` naming the vital) and a diastolic pressure not below the systolic.
    A value equal to a normal limit is not flagged.
    """
    if not values:
        raise ClinicalRuleViolation("at least one vital sign is required", field="vitals")
    unknown = [name for name in values if name not in VITAL_NAMES]
    if unknown:
        raise ClinicalRuleViolation(
            f"unknown vital sign {unknown[0]!r}; known: {', '.join(VITAL_NAMES)}",
            field=unknown[0],
        )
    signs = vital_signs()
    for name, value in values.items():
        sign = signs[name]
        if not (math.isfinite(value) and sign.possible_low <= value <= sign.possible_high):
            raise ImpossibleValueError(
                f"{name} {value:g} {sign.unit} is impossible: the possible range is "
                f"{sign.possible_low:g} to {sign.possible_high:g} {sign.unit}",
                field=name,
            )
    systolic, diastolic = values.get("systolic_bp"), values.get("diastolic_bp")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise ClinicalRuleViolation(
            f"diastolic_bp {diastolic:g} must be below systolic_bp {systolic:g}",
            field="diastolic_bp",
        )
    flags: dict[str, VitalFlag] = {}
    for name in VITAL_NAMES:
        if name not in values:
            continue
        if values[name] < signs[name].normal_low:
            flags[name] = "L"
        elif values[name] > signs[name].normal_high:
            flags[name] = "H"
    return flags
