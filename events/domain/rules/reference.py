"""The clinical reference data of ``events/reference/*.json``, loaded once into frozen dataclasses.

Reading these packaged files is the only I/O the rules do. A malformed file raises
``ReferenceDataError`` on first use: it is a build error, never a user error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Literal

__all__ = [
    "AllergyRules",
    "Analyte",
    "Conversion",
    "CrossReactivity",
    "Dose",
    "DrugInfo",
    "ReferenceDataError",
    "UnitTable",
    "VitalSign",
    "allergy_rules",
    "analyte",
    "analytes",
    "drugs",
    "unit_table",
    "vital_signs",
]

_PACKAGE = "events.domain"
_FOLDER = "reference"


class ReferenceDataError(ValueError):
    """A packaged reference file is malformed or inconsistent with the others."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a value in one unit is brought to another: multiplied or divided by a factor."""

    operation: Literal["multiply_by", "divide_by"]
    factor: float

    def apply(self, value: float) -> float:
        """The value in the target unit."""
        if self.operation == "multiply_by":
            return value * self.factor
        return value / self.factor


@dataclass(frozen=True, slots=True)
class UnitTable:
    """The accepted UCUM units: every accepted spelling mapped to its canonical spelling."""

    source: str
    canonical: tuple[str, ...]
    spellings: Mapping[str, str]
    dose_conversions: Mapping[tuple[str, str], Conversion]


@dataclass(frozen=True, slots=True)
class Analyte:
    """A LOINC-coded analyte: its canonical unit, conversions into it and critical limits."""

    code: str
    name: str
    unit: str
    conversions: Mapping[str, Conversion]
    possible_min: float | None
    critical_low: float | None
    critical_high: float | None
    note: str | None
    source: str | None = None  # where the critical limits come from (else the file's source)


@dataclass(frozen=True, slots=True)
class Dose:
    """An amount of a drug in a canonical UCUM unit."""

    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class DrugInfo:
    """An RxNorm ingredient: its substance, other names, classes and adult maximum single dose.

    ``aliases`` are lower-case brand names and salt forms; ``valence`` (electrolytes only) is
    the charge of the ion, so that 1 mmol is ``valence`` meq.
    """

    code: str
    name: str
    substance: str
    classes: frozenset[str]
    max_single_dose: Dose | None
    note: str | None
    aliases: tuple[str, ...] = ()
    valence: float | None = None


@dataclass(frozen=True, slots=True)
class CrossReactivity:
    """An allergy to ``allergy_class`` is taken as an allergy to every class in ``reacts_with``."""

    allergy_class: str
    reacts_with: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class AllergyRules:
    """Cross-reactivity rules by class and the allergy texts that name a class.

    ``unspecified_flags``: the extra classes an allergy naming only a class (not a drug) flags.
    """

    source: str
    rules: Mapping[str, CrossReactivity]
    aliases: Mapping[str, str]
    unspecified_flags: Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class VitalSign:
    """A vital sign: its unit, the possible range (else refused) and the normal adult range."""

    name: str
    unit: str
    possible_low: float
    possible_high: float
    normal_low: float
    normal_high: float


# --- typed access to parsed JSON -------------------------------------------------------------


def _load(name: str) -> Mapping[str, object]:
    text = files(_PACKAGE).joinpath(_FOLDER).joinpath(name).read_text(encoding="utf-8")
    return _obj(json.loads(text), name)


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ReferenceDataError(f"{where}: expected an object")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise ReferenceDataError(f"{where}: expected a list")
    return value


def _str(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ReferenceDataError(f"{where}: {key!r} must be a non-empty string")
    return value


def _opt_str(obj: Mapping[str, object], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where)


def _num(obj: Mapping[str, object], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ReferenceDataError(f"{where}: {key!r} must be a finite number")
    return float(value)


def _opt_num(obj: Mapping[str, object], key: str, where: str) -> float | None:
    return None if obj.get(key) is None else _num(obj, key, where)


def _str_list(obj: Mapping[str, object], key: str, where: str) -> list[str]:
    items = _list(obj.get(key), f"{where}.{key}")
    if not all(isinstance(item, str) and item for item in items):
        raise ReferenceDataError(f"{where}: {key!r} must list non-empty strings")
    return [str(item) for item in items]


def _conversion(value: object, where: str) -> Conversion:
    obj = _obj(value, where)
    if len(obj) != 1:
        raise ReferenceDataError(f"{where}: give exactly one of 'multiply_by' or 'divide_by'")
    if "multiply_by" in obj:
        operation: Literal["multiply_by", "divide_by"] = "multiply_by"
    elif "divide_by" in obj:
        operation = "divide_by"
    else:
        raise ReferenceDataError(f"{where}: give exactly one of 'multiply_by' or 'divide_by'")
    factor = _num(obj, operation, where)
    if factor <= 0:
        raise ReferenceDataError(f"{where}: a conversion factor must be positive")
    return Conversion(operation, factor)


def _require_unit(unit: str, table: UnitTable, where: str) -> None:
    if unit not in table.canonical:
        raise ReferenceDataError(f"{where}: {unit!r} is not a canonical unit of units.json")


# --- loaders ---------------------------------------------------------------------------------


@cache
def unit_table() -> UnitTable:
    """The accepted units of ``units.json``."""
    data = _load("units.json")
    canonical: list[str] = []
    spellings: dict[str, str] = {}
    for index, item in enumerate(_list(data.get("units"), "units.json units")):
        where = f"units.json units[{index}]"
        entry = _obj(item, where)
        unit = _str(entry, "unit", where)
        canonical.append(unit)
        for spelling in [unit, *_str_list(entry, "aliases", where)]:
            if spellings.setdefault(spelling, unit) != unit:
                raise ReferenceDataError(f"{where}: {spelling!r} already spells another unit")
    conversions: dict[tuple[str, str], Conversion] = {}
    for index, item in enumerate(_list(data.get("dose_conversions"), "dose_conversions")):
        where = f"units.json dose_conversions[{index}]"
        entry = _obj(item, where)
        source, target = _str(entry, "from", where), _str(entry, "to", where)
        factor = {key: value for key, value in entry.items() if key not in ("from", "to")}
        conversions[(source, target)] = _conversion(factor, where)
    table = UnitTable(
        source=_str(data, "source", "units.json"),
        canonical=tuple(canonical),
        spellings=MappingProxyType(spellings),
        dose_conversions=MappingProxyType(conversions),
    )
    for source, target in conversions:
        _require_unit(source, table, "units.json dose_conversions")
        _require_unit(target, table, "units.json dose_conversions")
    return table


@cache
def analytes() -> Mapping[str, Analyte]:
    """The analytes of ``analytes.json`` by LOINC code."""
    data = _load("analytes.json")
    _str(data, "source", "analytes.json")
    table = unit_table()
    found: dict[str, Analyte] = {}
    for index, item in enumerate(_list(data.get("analytes"), "analytes.json analytes")):
        where = f"analytes.json analytes[{index}]"
        entry = _obj(item, where)
        code = _str(entry, "code", where)
        unit = _str(entry, "unit", where)
        _require_unit(unit, table, where)
        conversions: dict[str, Conversion] = {}
        for source, conversion in _obj(entry.get("conversions"), where).items():
            _require_unit(source, table, where)
            conversions[source] = _conversion(conversion, f"{where} {source}")
        low = _opt_num(entry, "critical_low", where)
        high = _opt_num(entry, "critical_high", where)
        if low is not None and high is not None and low >= high:
            raise ReferenceDataError(f"{where}: critical_low must be below critical_high")
        if code in found:
            raise ReferenceDataError(f"{where}: duplicate code {code}")
        found[code] = Analyte(
            code=code,
            name=_str(entry, "name", where),
            unit=unit,
            conversions=MappingProxyType(conversions),
            possible_min=_opt_num(entry, "possible_min", where),
            critical_low=low,
            critical_high=high,
            note=_opt_str(entry, "note", where),
            source=_opt_str(entry, "source", where),
        )
    return MappingProxyType(found)


def analyte(code: str) -> Analyte | None:
    """The analyte with this LOINC code, or None if the reference data does not know it."""
    return analytes().get(code.strip())


@cache
def drugs() -> Mapping[str, DrugInfo]:
    """The drugs of ``drugs.json`` by RxNorm ingredient RXCUI."""
    data = _load("drugs.json")
    _str(data, "source", "drugs.json")
    table = unit_table()
    found: dict[str, DrugInfo] = {}
    for index, item in enumerate(_list(data.get("drugs"), "drugs.json drugs")):
        where = f"drugs.json drugs[{index}]"
        entry = _obj(item, where)
        code = _str(entry, "code", where)
        substance = _str(entry, "substance", where)
        if substance != substance.lower():
            raise ReferenceDataError(f"{where}: substance must be lower case")
        dose: Dose | None = None
        if entry.get("max_single_dose") is not None:
            dose_entry = _obj(entry.get("max_single_dose"), where)
            dose = Dose(_num(dose_entry, "value", where), _str(dose_entry, "unit", where))
            _require_unit(dose.unit, table, where)
        if code in found:
            raise ReferenceDataError(f"{where}: duplicate code {code}")
        aliases = tuple(_str_list(entry, "aliases", where)) if "aliases" in entry else ()
        if any(alias != alias.lower() for alias in aliases):
            raise ReferenceDataError(f"{where}: aliases must be lower case")
        found[code] = DrugInfo(
            code=code,
            name=_str(entry, "name", where),
            substance=substance,
            classes=frozenset(_str_list(entry, "classes", where)),
            max_single_dose=dose,
            note=_opt_str(entry, "note", where),
            aliases=aliases,
            valence=_opt_num(entry, "valence", where),
        )
    return MappingProxyType(found)


@cache
def allergy_rules() -> AllergyRules:
    """The cross-reactivity rules and class aliases of ``allergy_classes.json``."""
    data = _load("allergy_classes.json")
    rules: dict[str, CrossReactivity] = {}
    items = _list(data.get("cross_reactivity"), "allergy_classes.json cross_reactivity")
    for index, item in enumerate(items):
        where = f"allergy_classes.json cross_reactivity[{index}]"
        entry = _obj(item, where)
        allergy_class = _str(entry, "class", where)
        rules[allergy_class] = CrossReactivity(
            allergy_class=allergy_class,
            reacts_with=frozenset(_str_list(entry, "reacts_with", where)),
            source=_str(entry, "source", where),
        )
    aliases: dict[str, str] = {}
    for text, target in _obj(data.get("aliases"), "allergy_classes.json aliases").items():
        if not isinstance(target, str) or text != text.casefold():
            raise ReferenceDataError(f"allergy_classes.json aliases: bad entry {text!r}")
        aliases[text] = target
    unspecified: dict[str, frozenset[str]] = {}
    extra = data.get("unspecified_class_also_flags", {})
    for name, item in _obj(extra, "allergy_classes.json unspecified_class_also_flags").items():
        where = f"allergy_classes.json unspecified_class_also_flags {name}"
        entry = _obj(item, where)
        _str(entry, "source", where)
        unspecified[name] = frozenset(_str_list(entry, "flags", where))
    return AllergyRules(
        source=_str(data, "source", "allergy_classes.json"),
        rules=MappingProxyType(rules),
        aliases=MappingProxyType(aliases),
        unspecified_flags=MappingProxyType(unspecified),
    )


@cache
def vital_signs() -> Mapping[str, VitalSign]:
    """The vital signs of ``vitals.json`` by name."""
    data = _load("vitals.json")
    _str(data, "source", "vitals.json")
    table = unit_table()
    found: dict[str, VitalSign] = {}
    for index, item in enumerate(_list(data.get("vitals"), "vitals.json vitals")):
        where = f"vitals.json vitals[{index}]"
        entry = _obj(item, where)
        sign = VitalSign(
            name=_str(entry, "name", where),
            unit=_str(entry, "unit", where),
            possible_low=_num(entry, "possible_low", where),
            possible_high=_num(entry, "possible_high", where),
            normal_low=_num(entry, "normal_low", where),
            normal_high=_num(entry, "normal_high", where),
        )
        _require_unit(sign.unit, table, where)
        bounds = (sign.possible_low, sign.normal_low, sign.normal_high, sign.possible_high)
        if list(bounds) != sorted(bounds) or sign.normal_low == sign.normal_high:
            raise ReferenceDataError(f"{where}: need possible_low <= normal range <= possible_high")
        found[sign.name] = sign
    return MappingProxyType(found)
