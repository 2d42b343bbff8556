"""Flags of a laboratory result against its reference range and the analyte's critical limits.

Besides plain numbers, a result may be a number with a comparator (``<0.01``, ``>1000``:
the true value lies beyond the bound) or text (``positive``). Text never gets a numeric
flag. A comparator value is flagged only when every value it allows has the same flag
(``>1000`` glucose is HH whatever it is; ``<5`` potassium could be L or N: no flag).
Statuses: a result is received preliminary or final; an amendment finalises a
preliminary result, or corrects a final (or corrected) one, which needs a reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError
from events.domain.rules.reference import Analyte, analyte
from events.domain.rules.units import canonical_unit, to_canonical

__all__ = [
    "CRITICAL_FLAGS",
    "Comparator",
    "Flag",
    "ReportedValue",
    "ResultStatus",
    "Trend",
    "amended_status",
    "flag_result",
    "flag_value",
    "is_critical",
    "parse_value",
    "received_status",
    "trend",
]

Flag = Literal["N", "L", "H", "LL", "HH"]
Trend = Literal["up", "down", "same"]
Comparator = Literal["<", "<=", ">", ">="]
ResultStatus = Literal["preliminary", "final", "corrected"]
Edge = Literal["below", "at", "above"]
CRITICAL_FLAGS: frozenset[str] = frozenset({"HH", "LL"})

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


def _flag_at(
    found: Analyte | None,
    point: tuple[float, float | None, bool],
    reference: tuple[float | None, float | None],
    edge: Edge,
) -> Flag:
    """The flag of the values at ``edge`` of ``value``: just below it, it, or just above it.

    ``point`` is (value in its unit, value in the canonical unit or None, tolerant)."""
    value, canonical_value, tolerant = point

    def lt(x: float, limit: float, tol: bool) -> bool:
        if edge == "below":  # some value just below x is below the limit
            return x <= limit or _near(x, limit, tolerant=tol)
        return _below(x, limit, tolerant=tol)

    def gt(x: float, limit: float, tol: bool) -> bool:
        if edge == "above":
            return x >= limit or _near(x, limit, tolerant=tol)
        return _above(x, limit, tolerant=tol)

    if found is not None and canonical_value is not None:
        low, high = found.critical_low, found.critical_high
        if low is not None and lt(canonical_value, low, tolerant):
            return "LL"
        if high is not None and gt(canonical_value, high, tolerant):
            return "HH"
    reference_low, reference_high = reference
    if reference_low is not None and lt(value, reference_low, False):
        return "L"
    if reference_high is not None and gt(value, reference_high, False):
        return "H"
    return "N"


def _checked(
    code: str, value: float, unit: str, reference_low: float | None, reference_high: float | None
) -> tuple[Analyte | None, tuple[float, float | None, bool]]:
    _require_finite(value, "value")
    _require_finite(reference_low, "reference_low")
    _require_finite(reference_high, "reference_high")
    if reference_low is not None and reference_high is not None and reference_low > reference_high:
        raise ClinicalRuleViolation(
            f"reference_low {reference_low:g} is above reference_high {reference_high:g}",
            field="reference_low",
        )
    converted = to_canonical(code, value, unit)
    found = analyte(code)
    if found is None or converted is None:
        return None, (value, None, False)
    canonical_value, canonical = converted
    return found, (value, canonical_value, canonical_unit(unit) != canonical)


def _impossible(found: Analyte, canonical_value: float, comparator: Comparator | None) -> None:
    """Refuse a value (or every value a comparator allows) below the possible minimum."""
    minimum = found.possible_min
    if minimum is None or comparator in (">", ">="):
        return
    if canonical_value < minimum or (comparator == "<" and canonical_value <= minimum):
        raise ImpossibleValueError(
            f"{found.name} cannot be below {minimum:g} {found.unit}", field="value"
        )


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
    found, point = _checked(code, value, unit, reference_low, reference_high)
    if found is not None and point[1] is not None:
        _impossible(found, point[1], None)
    return _flag_at(found, point, (reference_low, reference_high), "at")


def _extreme(
    found: Analyte | None, reference: tuple[float | None, float | None], low: bool
) -> Flag:
    """The flag of the lowest (or highest) values a comparator allows, with no bound."""
    critical = None if found is None else (found.critical_low if low else found.critical_high)
    if critical is not None:
        return "LL" if low else "HH"
    return ("L" if low else "H") if reference[0 if low else 1] is not None else "N"


def flag_value(
    code: str,
    reported: ReportedValue,
    unit: str | None,
    reference_low: float | None,
    reference_high: float | None,
) -> Flag | None:
    """The flag of a reported value, or None when no numeric flag applies.

    A plain number is flagged as by ``flag_result``. Text: None. A comparator value: the flag
    shared by every value it allows (``<x`` down to the analyte's possible minimum, or to
    minus infinity when unknown; ``>x`` up to infinity), None when they differ."""
    if reported.value is None:
        return None
    if unit is None:
        raise ClinicalRuleViolation("a numeric result needs a unit", field="unit")
    if reported.comparator is None:
        return flag_result(code, reported.value, unit, reference_low, reference_high)
    found, point = _checked(code, reported.value, unit, reference_low, reference_high)
    reference = (reference_low, reference_high)
    if found is not None and point[1] is not None:
        _impossible(found, point[1], reported.comparator)
    edges: dict[Comparator, Edge] = {"<": "below", "<=": "at", ">": "above", ">=": "at"}
    bound = _flag_at(found, point, reference, edges[reported.comparator])
    if reported.comparator in ("<", "<="):
        minimum = None if found is None or point[1] is None else found.possible_min
        if found is None or minimum is None:
            other = _extreme(found, reference, low=True)
        else:
            in_unit = _from_canonical(found, unit, minimum)
            other = _flag_at(found, (in_unit, minimum, point[2]), reference, "at")
    else:
        other = _extreme(found, reference, low=False)
    return bound if bound == other else None


def _from_canonical(found: Analyte, unit: str, value: float) -> float:
    conversion = found.conversions.get(canonical_unit(unit))
    if conversion is None:
        return value
    if conversion.operation == "multiply_by":
        return value / conversion.factor
    return value * conversion.factor


def is_critical(flag: str | None) -> bool:
    """Whether a flag is critical (HH or LL)."""
    return flag in CRITICAL_FLAGS


# --- reported values and statuses ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportedValue:
    """A value as the lab reported it: a number, a number with a comparator, or text."""

    value: float | None
    comparator: Comparator | None = None
    text: str | None = None

    @property
    def value_type(self) -> Literal["numeric", "text"]:
        return "text" if self.value is None else "numeric"


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARED = re.compile(rf"^(<=|>=|<|>|\u2264|\u2265)\s*({_NUMBER})$")
_PLAIN = re.compile(rf"^{_NUMBER}$")
_SIGNS: dict[str, Comparator] = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "\u2264": "<=",
    "\u2265": ">=",
}


def parse_value(value: float | str) -> ReportedValue:
    """A reported value read: ``6.9`` or ``"6.9"`` a number, ``"<0.01"`` / ``">= 1000"`` a
    number with its comparator (kept, with the text), anything else text (``"positive"``)."""
    if not isinstance(value, str):
        _require_finite(float(value), "value")
        return ReportedValue(float(value))
    text = value.strip()
    if not text:
        raise ClinicalRuleViolation("value is empty", field="value")
    if _PLAIN.match(text):
        number = float(text)
        _require_finite(number, "value")
        return ReportedValue(number)
    compared = _COMPARED.match(text)
    if compared:
        number = float(compared.group(2))
        _require_finite(number, "value")
        return ReportedValue(number, _SIGNS[compared.group(1)], text)
    return ReportedValue(None, None, text)


def received_status(status: str) -> ResultStatus:
    """A status a lab may report a new result with: preliminary or final."""
    if status == "preliminary":
        return "preliminary"
    if status == "final":
        return "final"
    raise ClinicalRuleViolation(
        f"a new result is preliminary or final, not {status!r}: a correction amends the "
        "reported result",
        field="status",
    )


def amended_status(current: str, requested: str | None) -> tuple[ResultStatus, bool]:
    """The status an amendment gives a result, and whether it needs a reason.

    A preliminary result is updated (preliminary) or finalised (final, the default), no
    reason needed. A final or corrected result can only be corrected, with a reason."""
    if current == "preliminary":
        if requested is None or requested == "final":
            return "final", False
        if requested == "preliminary":
            return "preliminary", False
        raise ClinicalRuleViolation(
            "a preliminary result is updated or finalised, not corrected", field="status"
        )
    if requested is None or requested == "corrected":
        return "corrected", True
    raise ClinicalRuleViolation(
        f"a {current} result can only be corrected, not made {requested}", field="status"
    )


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
