"""UCUM unit spellings and conversion of analyte values to their canonical unit."""

from __future__ import annotations

from events.domain.errors import UnknownUnitError
from events.domain.rules.reference import analyte, unit_table

__all__ = ["canonical_unit", "to_canonical"]

_EXAMPLES = 8


def canonical_unit(unit: str, *, field: str = "unit") -> str:
    """The canonical UCUM spelling of ``unit`` (surrounding whitespace ignored, case kept).

    Raises ``UnknownUnitError`` (with ``field``) for a spelling the reference data does not list.
    """
    table = unit_table()
    canonical = table.spellings.get(unit.strip())
    if canonical is None:
        examples = ", ".join(table.canonical[:_EXAMPLES])
        raise UnknownUnitError(
            f"unknown unit {unit!r}: use a UCUM spelling such as {examples}", field=field
        )
    return canonical


def to_canonical(code: str, value: float, unit: str) -> tuple[float, str] | None:
    """``value`` in the canonical unit of the analyte ``code``, with that unit.

    None when the analyte is not in the reference data. The unit spelling is always checked;
    ``UnknownUnitError`` if it is unknown or cannot be converted for a known analyte.
    """
    canonical = canonical_unit(unit)
    found = analyte(code)
    if found is None:
        return None
    if canonical == found.unit:
        return value, canonical
    conversion = found.conversions.get(canonical)
    if conversion is None:
        accepted = ", ".join([found.unit, *found.conversions])
        raise UnknownUnitError(
            f"{unit.strip()!r} cannot be converted for {found.name} ({found.code}); "
            f"accepted units: {accepted}",
            field="unit",
        )
    return conversion.apply(value), found.unit
