"""RxNorm clinical drugs (SCD, SCDC) mapped to their ingredient, for medication screening.

The dose, allergy and interaction checks know drugs by ingredient RXCUI (``drugs.json``);
an order from outside (a FHIR MedicationRequest) names the clinical drug (``310965``
"Ibuprofen 200 MG Oral Tablet"). ``rxnorm.json`` is the small mapping between the two;
reading that packaged file once is the only I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from types import MappingProxyType

from events.domain.rules.reference import ReferenceDataError

__all__ = ["ClinicalDrug", "clinical_drug", "clinical_drugs"]


@dataclass(frozen=True)
class ClinicalDrug:
    """One RxNorm clinical drug: its ingredient, strength and route."""

    code: str
    tty: str
    name: str
    ingredient: str
    ingredient_name: str
    strength: float
    strength_unit: str
    route: str
    source: str


def _text(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ReferenceDataError(f"{where}: {key} must be a non-empty string")
    return value


def _drug(item: object, where: str) -> ClinicalDrug:
    if not isinstance(item, dict):
        raise ReferenceDataError(f"{where}: expected an object")
    strength = item.get("strength")
    if not isinstance(strength, dict) or not isinstance(strength.get("value"), int | float):
        raise ReferenceDataError(f"{where}: strength needs a numeric value")
    return ClinicalDrug(
        code=_text(item, "code", where),
        tty=_text(item, "tty", where),
        name=_text(item, "name", where),
        ingredient=_text(item, "ingredient", where),
        ingredient_name=_text(item, "ingredient_name", where),
        strength=float(strength["value"]),
        strength_unit=_text(strength, "unit", where),
        route=_text(item, "route", where),
        source=_text(item, "source", where),
    )


@cache
def clinical_drugs() -> Mapping[str, ClinicalDrug]:
    """The clinical drugs of ``rxnorm.json`` by RXCUI."""
    text = files("events.domain").joinpath("reference").joinpath("rxnorm.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("source"), str):
        raise ReferenceDataError("rxnorm.json: expected an object naming its source")
    items = data.get("drugs")
    if not isinstance(items, list):
        raise ReferenceDataError("rxnorm.json: drugs must be a list")
    found: dict[str, ClinicalDrug] = {}
    for index, item in enumerate(items):
        drug = _drug(item, f"rxnorm.json drugs[{index}]")
        if drug.code in found:
            raise ReferenceDataError(f"rxnorm.json drugs[{index}]: {drug.code} is listed twice")
        found[drug.code] = drug
    return MappingProxyType(found)


def clinical_drug(code: str) -> ClinicalDrug | None:
    """The clinical drug with this RXCUI, or None when the mapping lacks it."""
    return clinical_drugs().get(code.strip())
