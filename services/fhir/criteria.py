"""FHIR search parameter values as SQL conditions: tokens, dates with prefixes, strings.

Each function takes one parameter's value as the client wrote it (commas: any of them) and
the source column(s) it filters on, and answers a condition with its values, or raises a
400 ``FhirError`` that names the parameter. Columns come from the kinds (code, not input)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import sql

from services.fhir.kinds import Param
from services.fhir.outcomes import FhirError

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")
_DATE_ONLY = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(frozen=True)
class Condition:
    """A SQL condition over the wrapped source ``r`` and the values of its placeholders."""

    sql: sql.Composable
    values: tuple[Any, ...]


def _column(name: str) -> sql.Composable:
    return sql.SQL("r.{}").format(sql.Identifier(name))


def _any_of(parts: list[Condition]) -> Condition:
    if len(parts) == 1:
        return parts[0]
    joined = sql.SQL(" OR ").join(sql.SQL("({})").format(p.sql) for p in parts)
    return Condition(sql.SQL("({})").format(joined), tuple(v for p in parts for v in p.values))


def _values(name: str, raw: str) -> list[str]:
    values = [v.strip() for v in raw.split(",")]
    if not all(values):
        raise FhirError(400, f"{name}: empty value", expression=[name])
    return values


def token(name: str, param: Param, raw: str) -> Condition:
    """``system|code``, ``|code`` (no system), ``system|`` or ``code``."""
    parts: list[Condition] = []
    has_system = len(param.columns) == 2 and bool(param.columns[0])
    code_column = _column(param.columns[-1])
    for value in _values(name, raw):
        system, bar, code = value.rpartition("|")
        if not bar:
            parts.append(Condition(sql.SQL("{} = %s").format(code_column), (value,)))
            continue
        checks: list[Condition] = []
        if has_system:
            system_column = _column(param.columns[0])
            if system:
                checks.append(Condition(sql.SQL("{} = %s").format(system_column), (system,)))
            else:
                checks.append(Condition(sql.SQL("{} IS NULL").format(system_column), ()))
        elif system:
            raise FhirError(400, f"{name}: this parameter takes no system", expression=[name])
        if code:
            checks.append(Condition(sql.SQL("{} = %s").format(code_column), (code,)))
        if not checks:
            raise FhirError(400, f"{name}: give a code", expression=[name])
        parts.append(
            Condition(
                sql.SQL(" AND ").join(c.sql for c in checks),
                tuple(v for c in checks for v in c.values),
            )
        )
    return _any_of(parts)


def _interval(name: str, value: str) -> tuple[datetime | date, datetime | date]:
    """The instants (or days, for a date without time) a FHIR date value covers: [low, high)."""
    if _DATE_ONLY.match(value):
        pieces = [int(p) for p in value.split("-")]
        if len(pieces) == 1:
            return date(pieces[0], 1, 1), date(pieces[0] + 1, 1, 1)
        if len(pieces) == 2:
            year, month = pieces
            return date(year, month, 1), date(year + month // 12, month % 12 + 1, 1)
        day = date(*pieces)
        return day, day + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, f"{name}: {value!r} is not a FHIR date", expression=[name]) from None
    if moment.tzinfo is None:
        raise FhirError(400, f"{name}: a time needs a time zone", expression=[name])
    precision = timedelta(seconds=1) if moment.microsecond == 0 else timedelta(microseconds=1)
    return moment, moment + precision


def date_condition(name: str, param: Param, raw: str) -> Condition:
    """A date with an optional prefix (eq, ne, lt, gt, le, ge, sa, eb); eq is the default."""
    parts: list[Condition] = []
    for value in _values(name, raw):
        prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
        rest = value[2:] if value[:2] in DATE_PREFIXES else value
        low, high = _interval(name, rest)
        column = _column(param.columns[0])
        # a day compares with the column's day (in UTC: search.py sets the session zone)
        typed = column if isinstance(low, datetime) else sql.SQL("({})::date").format(column)
        templates = {
            "eq": ("{c} >= %s AND {c} < %s", (low, high)),
            "ne": ("NOT ({c} >= %s AND {c} < %s)", (low, high)),
            "lt": ("{c} < %s", (low,)),
            "eb": ("{c} < %s", (low,)),
            "le": ("{c} < %s", (high,)),
            "gt": ("{c} >= %s", (high,)),
            "sa": ("{c} >= %s", (high,)),
            "ge": ("{c} >= %s", (low,)),
        }
        template, values = templates[prefix]
        parts.append(Condition(sql.SQL(template).format(c=typed), values))
    return _any_of(parts)


def string(name: str, param: Param, raw: str) -> Condition:
    """Case-insensitive 'starts with', as FHIR's default string search."""
    parts = []
    for value in _values(name, raw):
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(
            Condition(
                sql.SQL("lower({}) LIKE lower(%s) || '%%'").format(_column(param.columns[0])),
                (escaped,),
            )
        )
    return _any_of(parts)


def reference_ids(name: str, raw: str, target: str = "Patient") -> list[UUID]:
    """The ids of ``<target>/<id>`` or bare ``<id>`` references."""
    ids = []
    for value in _values(name, raw):
        kind, slash, rest = value.rpartition("/")
        given = kind.rsplit("/", 1)[-1]
        if slash and given != target:
            raise FhirError(
                400, f"{name}: {given} references are not served, only {target}", expression=[name]
            )
        try:
            ids.append(UUID(rest))
        except ValueError:
            raise FhirError(400, f"{name}: {rest!r} is not an id here", expression=[name]) from None
    return ids


def reference(name: str, param: Param, raw: str) -> Condition:
    """Any of the referenced ids, in the parameter's column."""
    ids = reference_ids(name, raw, param.target)
    return Condition(sql.SQL("{} = ANY(%s)").format(_column(param.columns[0])), (ids,))


BUILDERS = {"token": token, "date": date_condition, "string": string, "reference": reference}
