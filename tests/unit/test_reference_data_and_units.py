"""The clinical rules as narratives: the packaged reference data and unit conversion."""

from __future__ import annotations

import math
from importlib.resources import files

import pytest

from events.domain.errors import UnknownUnitError
from events.domain.rules.reference import (
    allergy_rules,
    analytes,
    drugs,
    unit_table,
    vital_signs,
)
from events.domain.rules.units import canonical_unit, to_canonical
from events.domain.rules.vitals import VITAL_NAMES
from tests.unit.rules_helpers import (
    CALCIUM,
    CREATININE,
    GLUCOSE,
    HEMOGLOBIN,
    PLATELETS,
    POTASSIUM,
    SODIUM,
    UNKNOWN_LOINC,
)

# --- the reference data ----------------------------------------------------------------------


def test_every_reference_file_is_packaged_and_says_where_its_values_come_from() -> None:
    # given the reference folder inside the events package
    folder = files("events.domain").joinpath("reference")
    # when each data set is loaded
    sources = [unit_table().source, allergy_rules().source]
    # then every file exists as package data and each data set carries a source note
    for name in ("units", "analytes", "drugs", "allergy_classes", "vitals"):
        assert folder.joinpath(f"{name}.json").is_file()
    assert all(source.strip() for source in sources)
    assert len(drugs()) >= 20
    assert {POTASSIUM, SODIUM, GLUCOSE, CALCIUM, HEMOGLOBIN, PLATELETS, CREATININE} <= set(
        analytes()
    )


def test_the_vital_names_are_exactly_the_vitals_of_the_reference_data() -> None:
    # given the vital names the rules know / when compared with vitals.json / then they agree
    assert set(VITAL_NAMES) == set(vital_signs())


def test_every_drug_class_in_a_rule_or_alias_is_a_class_some_drug_has() -> None:
    # given the allergy rules and the drugs
    known_classes = set().union(*(info.classes for info in drugs().values()))
    rules = allergy_rules()
    # when every class the rules mention is collected
    mentioned = set(rules.rules) | set(rules.aliases.values())
    for rule in rules.rules.values():
        mentioned |= rule.reacts_with
    # then none of them is a typo
    assert mentioned <= known_classes


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("mEq/L", "meq/L"),
        ("meq/L", "meq/L"),
        ("umol/L", "umol/L"),
        ("\u00b5mol/L", "umol/L"),  # micro sign
        ("\u03bcmol/L", "umol/L"),  # greek small letter mu
        ("  mg/dL ", "mg/dL"),
        ("IU/L", "[IU]/L"),
        ("K/uL", "10*3/uL"),
        ("10^3/uL", "10*3/uL"),
        ("x10E3/uL", "10*3/uL"),
        ("INR", "{INR}"),
        ("mmHg", "mm[Hg]"),
        ("mcg", "ug"),
    ],
)
def test_an_alias_spelling_is_read_as_its_canonical_ucum_unit(
    spelling: str, canonical: str
) -> None:
    # given a unit as an interface spells it / when canonicalised / then it is the UCUM form
    assert canonical_unit(spelling) == canonical


def test_an_unknown_unit_is_refused_with_the_unit_named_and_accepted_spellings_listed() -> None:
    # given a unit no table lists
    # when it is canonicalised
    with pytest.raises(UnknownUnitError) as refused:
        canonical_unit("furlongs/fortnight")
    # then the error names it and shows what is accepted
    assert "furlongs/fortnight" in str(refused.value)
    assert "mmol/L" in str(refused.value)
    assert refused.value.field == "unit"


def test_unit_spellings_are_case_sensitive_unless_the_variant_is_listed() -> None:
    # given "mg/dl" is a listed alias but "Mg/Dl" is not
    assert canonical_unit("mg/dl") == "mg/dL"
    # when the unlisted variant is used / then it is refused
    with pytest.raises(UnknownUnitError):
        canonical_unit("Mg/Dl")


def test_glucose_in_mmol_per_litre_converts_to_mg_per_decilitre() -> None:
    # given glucose 5.0 mmol/L / when converted / then it is 90.08 mg/dL
    value, unit = to_canonical(GLUCOSE, 5.0, "mmol/L") or (math.nan, "")
    assert unit == "mg/dL"
    assert value == pytest.approx(90.08)


def test_creatinine_in_micromole_per_litre_converts_to_mg_per_decilitre() -> None:
    # given creatinine 88.42 umol/L, written with the micro sign
    # when converted / then it is 1 mg/dL
    value, unit = to_canonical(CREATININE, 88.42, "\u00b5mol/L") or (math.nan, "")
    assert unit == "mg/dL"
    assert value == pytest.approx(1.0)


def test_a_value_already_in_the_canonical_unit_is_unchanged() -> None:
    assert to_canonical(POTASSIUM, 4.1, "mmol/L") == (4.1, "mmol/L")


def test_an_unknown_analyte_has_no_canonical_value() -> None:
    assert to_canonical(UNKNOWN_LOINC, 1.0, "mg/dL") is None


def test_a_known_analyte_in_a_unit_it_cannot_convert_is_refused() -> None:
    # given potassium reported in mg/dL, which needs no molar mass we keep
    with pytest.raises(UnknownUnitError) as refused:
        to_canonical(POTASSIUM, 16.0, "mg/dL")
    # then the error says which units would do
    assert "mmol/L" in str(refused.value)
