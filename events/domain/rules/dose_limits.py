"""Dose limits by route, per 24 hours and by age: the ``limits`` of ``drugs.json``.

A drug's ``max_single_dose`` is its general single-dose maximum (the usual route's). Each
entry of its ``limits`` cites its source (the FDA label) and may name a ``route`` (it then
applies only to orders by that route), a ``from_age_years`` (it then applies from that
birthday on, e.g. citalopram over 60), a ``max_single_dose`` (replacing the general one
for its route) and a ``max_daily_dose`` (dose x doses per 24 h, see ``doses_per_day``).
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

from events.domain.errors import ImpossibleValueError
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
    "age_in_years",
    "age_limits_unscreened",
    "applicable_limits",
    "dose_limits",
    "doses_per_day",
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
