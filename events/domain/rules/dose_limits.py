"""Dose limits by route, per 24 hours and by age: the ``limits`` of ``drugs.json``.

A drug's ``max_single_dose`` is its general single-dose maximum (the usual route's). Each
entry of its ``limits`` cites its source (the FDA label) and may name a ``route`` (it then
applies only to orders by that route), a ``from_age_years`` (it then applies from that
birthday on, e.g. citalopram over 60), a ``max_single_dose`` (replacing the general one
for its route) and a ``max_daily_dose`` (dose x doses per 24 h, see ``doses_per_day``).

Per-kg limits are a drug's ``weight_limits``, kept apart from ``limits`` so that every check
that knows no weight (the pharmacy's queue, ``dose_alerts``) works as before. Each cites its
source and may name a ``route`` and a ``below_weight_kg`` (it then applies only to patients
weighing less, e.g. acetaminophen under 50 kg), with a ``max_single_dose_per_kg`` and/or a
``max_daily_dose_per_kg`` (a dose per kg of body weight: ``{"value": 15, "unit": "mg"}`` is
15 mg/kg). ``weight_dose_alerts`` checks a dose against them at the patient's latest
recorded weight: an excess is an alert that needs an override reason, like the other dose
limits. Without a recorded weight the check cannot run: ``weight_gaps`` says so with a "not
screened" note, recorded with the prescription for the pharmacist to see, never a refusal
(a weight is often unknown at admission, and refusing would delay every first dose).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from types import MappingProxyType
from typing import get_args

from events.domain.errors import ImpossibleValueError, UnknownUnitError
from events.domain.payloads.medications import Route
from events.domain.rules.reference import (
    Dose,
    ReferenceDataError,
    _list,
    _load,
    _num,
    _obj,
    _str,
    drugs,
    unit_table,
)

__all__ = [
    "ROUTES",
    "DoseLimit",
    "WeightLimit",
    "age_in_years",
    "age_limits_unscreened",
    "applicable_limits",
    "dose_limits",
    "doses_per_day",
    "weight_dose_alerts",
    "weight_gaps",
    "weight_limits",
]

# The routes a limit may name: those a prescription may carry.
ROUTES = frozenset(get_args(Route))

# Doses in any 24 hours for the named frequencies; qNh is ceil(24 / N); "prn" has no count.
_PER_DAY = {
    "once": 1,
    "stat": 1,
    "daily": 1,
    "at bedtime": 1,
    "weekly": 1,
    "bid": 2,
    "tid": 3,
    "qid": 4,
}
_EVERY = re.compile(r"^q(\d{1,2})h( prn)?$")


@dataclass(frozen=True, slots=True)
class DoseLimit:
    """One sourced limit of a drug: for a route (None: any) and from an age (None: adults)."""

    route: str | None
    from_age_years: int | None
    max_single_dose: Dose | None
    max_daily_dose: Dose | None
    source: str

    def describe(self) -> str:
        """How the limit is scoped, for an alert: " by the iv route", " from age 60"."""
        scope = f" by the {self.route} route" if self.route else ""
        return scope + (f" from age {self.from_age_years}" if self.from_age_years else "")


def _dose(entry: Mapping[str, object], key: str, where: str) -> Dose | None:
    if entry.get(key) is None:
        return None
    value = _obj(entry.get(key), f"{where}.{key}")
    dose = Dose(_num(value, "value", where), _str(value, "unit", where))
    if dose.unit not in unit_table().canonical or dose.value <= 0:
        raise ReferenceDataError(f"{where}: {key} needs a positive value in a canonical unit")
    return dose


def _limit(item: object, where: str) -> DoseLimit:
    entry = _obj(item, where)
    route = None if entry.get("route") is None else _str(entry, "route", where)
    if route is not None and route not in ROUTES:
        raise ReferenceDataError(f"{where}: unknown route {route!r}")
    age = None if entry.get("from_age_years") is None else _num(entry, "from_age_years", where)
    if age is not None and (age != int(age) or age <= 0):
        raise ReferenceDataError(f"{where}: from_age_years must be a positive whole number")
    limit = DoseLimit(
        route=route,
        from_age_years=None if age is None else int(age),
        max_single_dose=_dose(entry, "max_single_dose", where),
        max_daily_dose=_dose(entry, "max_daily_dose", where),
        source=_str(entry, "source", where),
    )
    if limit.max_single_dose is None and limit.max_daily_dose is None:
        raise ReferenceDataError(f"{where}: give max_single_dose or max_daily_dose")
    return limit


@cache
def dose_limits() -> Mapping[str, tuple[DoseLimit, ...]]:
    """The sourced limits of each drug of ``drugs.json`` by RXCUI (drugs without: none)."""
    known = drugs()
    found: dict[str, tuple[DoseLimit, ...]] = {}
    for index, item in enumerate(_list(_load("drugs.json").get("drugs"), "drugs.json drugs")):
        where = f"drugs.json drugs[{index}]"
        entry = _obj(item, where)
        if entry.get("limits") is None:
            continue
        code = _str(entry, "code", where)
        items = _list(entry.get("limits"), f"{where}.limits")
        found[code] = tuple(_limit(limit, f"{where}.limits[{n}]") for n, limit in enumerate(items))
    if not set(found) <= set(known):
        raise ReferenceDataError("drugs.json: limits of an unknown drug")
    return MappingProxyType(found)


def doses_per_day(frequency: str) -> int | None:
    """The most doses a frequency gives in any 24 hours; None for "prn" (no interval).

    q4h is 6, q6h 4, q5h 5 (at 0, 5, 10, 15 and 20 h), q48h 1; "q4h prn" counts as q4h (the
    most it allows). ``ImpossibleValueError`` for q0h or a spelling not listed here.
    """
    wanted = frequency.strip()
    if wanted in _PER_DAY:
        return _PER_DAY[wanted]
    if wanted == "prn":
        return None
    every = _EVERY.match(wanted)
    if every is None:
        raise ImpossibleValueError(f"unknown frequency {wanted!r}", field="frequency")
    hours = int(every.group(1))
    if hours == 0:
        raise ImpossibleValueError("a frequency of every 0 hours is impossible", field="frequency")
    return max(1, math.ceil(24 / hours))


def age_in_years(birth_date: date, on: date) -> int:
    """Completed years of age on ``on`` (a 29 February birthday counts on 1 March)."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)


def applicable_limits(code: str, route: str | None, age: int | None) -> tuple[DoseLimit, ...]:
    """The drug's limits for this route and age (an unknown age: only those without one)."""
    return tuple(
        limit
        for limit in dose_limits().get(code, ())
        if (limit.route is None or limit.route == route)
        and (limit.from_age_years is None or (age is not None and age >= limit.from_age_years))
    )


def age_limits_unscreened(code: str, route: str | None) -> tuple[DoseLimit, ...]:
    """The drug's age-specific limits for the route: unchecked when the age is unknown."""
    return tuple(
        limit
        for limit in dose_limits().get(code, ())
        if limit.from_age_years is not None and (limit.route is None or limit.route == route)
    )


# A converted dose this close to a per-kg maximum counts as equal to it (not exceeding).
_REL_TOL = 1e-9
_NOT_SCREENED = "not screened: "  # as ``events.domain.rules.medications.NOT_SCREENED``


@dataclass(frozen=True, slots=True)
class WeightLimit:
    """One sourced per-kg limit of a drug: for a route (None: any), for patients weighing
    less than ``below_weight_kg`` (None: any weight)."""

    route: str | None
    below_weight_kg: float | None
    max_single_dose_per_kg: Dose | None
    max_daily_dose_per_kg: Dose | None
    source: str

    def applies(self, route: str | None, weight_kg: float | None) -> bool:
        """For this route, and this weight (None: unknown, so any weight scope may apply)."""
        if self.route is not None and self.route != route:
            return False
        return weight_kg is None or self.below_weight_kg is None or weight_kg < self.below_weight_kg

    def describe(self) -> str:
        """How the limit is scoped, for an alert: " by the iv route", " under 50 kg"."""
        scope = f" by the {self.route} route" if self.route else ""
        return scope + (f" under {self.below_weight_kg:g} kg" if self.below_weight_kg else "")


def _weight_limit(item: object, where: str) -> WeightLimit:
    entry = _obj(item, where)
    route = None if entry.get("route") is None else _str(entry, "route", where)
    if route is not None and route not in ROUTES:
        raise ReferenceDataError(f"{where}: unknown route {route!r}")
    below = None if entry.get("below_weight_kg") is None else _num(entry, "below_weight_kg", where)
    if below is not None and below <= 0:
        raise ReferenceDataError(f"{where}: below_weight_kg must be positive")
    limit = WeightLimit(
        route=route,
        below_weight_kg=below,
        max_single_dose_per_kg=_dose(entry, "max_single_dose_per_kg", where),
        max_daily_dose_per_kg=_dose(entry, "max_daily_dose_per_kg", where),
        source=_str(entry, "source", where),
    )
    if limit.max_single_dose_per_kg is None and limit.max_daily_dose_per_kg is None:
        raise ReferenceDataError(f"{where}: give max_single_dose_per_kg or max_daily_dose_per_kg")
    return limit


@cache
def weight_limits() -> Mapping[str, tuple[WeightLimit, ...]]:
    """The sourced per-kg limits of each drug of ``drugs.json`` by RXCUI (drugs without: none)."""
    known = drugs()
    found: dict[str, tuple[WeightLimit, ...]] = {}
    for index, item in enumerate(_list(_load("drugs.json").get("drugs"), "drugs.json drugs")):
        where = f"drugs.json drugs[{index}]"
        entry = _obj(item, where)
        if entry.get("weight_limits") is None:
            continue
        items = _list(entry.get("weight_limits"), f"{where}.weight_limits")
        found[_str(entry, "code", where)] = tuple(
            _weight_limit(limit, f"{where}.weight_limits[{n}]") for n, limit in enumerate(items)
        )
    if not set(found) <= set(known):
        raise ReferenceDataError("drugs.json: weight limits of an unknown drug")
    return MappingProxyType(found)


def _in_unit(value: float, unit: str, target: str) -> float | None:
    """``value`` of ``unit`` in ``target`` by the dose conversions (None: not convertible)."""
    if unit == target:
        return value
    conversions = unit_table().dose_conversions
    if (unit, target) in conversions:
        return conversions[(unit, target)].apply(value)
    if (target, unit) in conversions:
        return value / conversions[(target, unit)].apply(1.0)
    return None


def _exceeds(amount: float, unit: str, per_kg: Dose, weight_kg: float, what: str) -> str:
    """Empty within ``per_kg`` x weight; else the alert's end (or why it cannot be checked)."""
    maximum = per_kg.value * weight_kg
    limit = (
        f"the maximum {what} of {per_kg.value:g} {per_kg.unit}/kg "
        f"({maximum:g} {per_kg.unit} at {weight_kg:g} kg)"
    )
    comparable = _in_unit(amount, unit, per_kg.unit)
    if comparable is None:
        return f"dose unit {unit} cannot be checked against {limit}"
    if comparable > maximum and not math.isclose(comparable, maximum, rel_tol=_REL_TOL):
        return f"exceeds {limit}"
    return ""


def weight_dose_alerts(
    code: str,
    dose: float,
    dose_unit: str,
    *,
    route: str | None,
    frequency: str | None,
    weight_kg: float | None,
) -> list[str]:
    """Alerts for a dose against the drug's per-kg maxima at ``weight_kg`` (single dose, and
    dose x doses per 24 h); none without a weight (see ``weight_gaps``) or per-kg limits."""
    limits = weight_limits().get(code.strip(), ())
    if weight_kg is None or not limits:
        return []
    try:
        unit = unit_table().spellings[dose_unit.strip()]
    except KeyError:
        raise UnknownUnitError(f"unknown unit {dose_unit!r}", field="dose_unit") from None
    per_day = doses_per_day(frequency) if frequency is not None else None
    name = drugs()[code.strip()].name
    alerts = []
    for limit in (lim for lim in limits if lim.applies(route, weight_kg)):
        scope = f" for {name}{limit.describe()}"
        if limit.max_single_dose_per_kg is not None:
            found = _exceeds(dose, unit, limit.max_single_dose_per_kg, weight_kg, "single dose")
            if found:
                given = "" if found.startswith("dose unit") else f"dose {dose:g} {unit} "
                alerts.append(f"{given}{found}{scope}")
        if limit.max_daily_dose_per_kg is not None and per_day is not None:
            total = dose * per_day
            found = _exceeds(total, unit, limit.max_daily_dose_per_kg, weight_kg, "daily dose")
            if found:
                given = f"daily dose {total:g} {unit} ({dose:g} {unit} {frequency}) "
                alerts.append(f"{'' if found.startswith('dose unit') else given}{found}{scope}")
    return alerts


def weight_gaps(code: str, route: str | None, weight_kg: float | None) -> list[str]:
    """ "Not screened" notes: per-kg limits of the drug for the route that no recorded weight
    lets the dose be checked against (shown with the order; no override reason needed)."""
    limits = [lim for lim in weight_limits().get(code.strip(), ()) if lim.applies(route, None)]
    if weight_kg is not None or not limits:
        return []
    name = drugs()[code.strip()].name
    scopes = ", ".join(sorted({lim.describe().strip() or "any weight" for lim in limits}))
    return [
        f"{_NOT_SCREENED}the per-kg dose limits of {name} ({scopes}) without a recorded body weight"
    ]
