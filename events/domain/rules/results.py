"""Flags of a laboratory result against its reference range and the analyte's critical limits."""

from __future__ import annotations

import math
from typing import Literal

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError
from events.domain.rules.reference import analyte
from events.domain.rules.units import canonical_unit, to_canonical

__all__ = ["Flag", "Trend", "flag_result", "trend"]

Flag = Literal["N", "L", "H", "LL", "HH"]
Trend = Literal["up", "down", "same"]

# Conversions multiply by inexact factors: a converted value this close to a critical limit
# counts as equal to it, and a value equal to a limit is not beyond it. A value already in
# the canonical unit is compared exactly.
_REL_TOL = 1e-9


def _require_finite(value: float | None, field: str) -> None:
    if value is not None and not math.isfinite(value):
        raise ImpossibleValueError(f"{field} must be a finite number, not {value}", field=field)


def _near(value: float, limit: float, *, tolerant: bool) -> bool:
    return tolerant and math.isclose(value, limit, rel_tol=_REL_TOL)


def _below(value: float, limit: float, *, tolerant: bool) -> bool:
    return value < limit and not _near(value, limit, tolerant=tolerant)


def _above(value: float, limit: float, *, tolerant: bool) -> bool:
    return value > limit and not _near(value, limit, tolerant=tolerant)


def flag_result(
    code: str,
    value: float,
    unit: str,
    reference_low: float | None,
    reference_high: float | None,
) -> Flag:
    """The flag of one result.

    The reference range is in the result's own unit: below it "L", above it "H", equal to a
    limit is normal. The critical limits of ``analytes.json`` apply to the value converted to
    the analyte's canonical unit and override L/H: below "LL", above "HH". For a known analyte
    the unit must be convertible (``UnknownUnitError`` otherwise, never a silent pass); an
    unknown unit spelling is refused for every code.
    """
    _require_finite(value, "value")
    _require_finite(reference_low, "reference_low")
    _require_finite(reference_high, "reference_high")
    if reference_low is not None and reference_high is not None and reference_low > reference_high:
        raise ClinicalRuleViolation(
            f"reference_low {reference_low:g} is above reference_high {reference_high:g}",
            field="reference_low",
        )
    converted = to_canonical(code, value, unit)
    flag: Flag = "N"
    if reference_low is not None and value < reference_low:
        flag = "L"
    elif reference_high is not None and value > reference_high:
        flag = "H"
    found = analyte(code)
    if found is None or converted is None:
        return flag
    canonical_value, canonical = converted
    tolerant = canonical_unit(unit) != canonical
    if found.possible_min is not None and canonical_value < found.possible_min:
        raise ImpossibleValueError(
            f"{found.name} cannot be below {found.possible_min:g} {canonical}", field="value"
        )
    low, high = found.critical_low, found.critical_high
    if low is not None and _below(canonical_value, low, tolerant=tolerant):
        return "LL"
    if high is not None and _above(canonical_value, high, tolerant=tolerant):
        return "HH"
    return flag


def trend(previous: float | None, current: float) -> Trend | None:
    """How ``current`` moved from the previous result in the same unit; None without one."""
    _require_finite(previous, "previous")
    _require_finite(current, "value")
    if previous is None:
        return None
    if current > previous:
        return "up"
    if current < previous:
        return "down"
    return "same"
