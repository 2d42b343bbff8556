"""The clinical rules as narratives: units, result flags, vital signs and medication alerts."""

from __future__ import annotations

import math
from importlib.resources import files

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError, UnknownUnitError
from events.domain.rules.medications import allergy_alerts, dose_alerts, drug, drug_by_name
from events.domain.rules.reference import (
    allergy_rules,
    analyte,
    analytes,
    drugs,
    unit_table,
    vital_signs,
)
from events.domain.rules.results import flag_result, trend
from events.domain.rules.units import canonical_unit, to_canonical
from events.domain.rules.vitals import VITAL_NAMES, check_vitals

POTASSIUM = "2823-3"
SODIUM = "2951-2"
GLUCOSE = "2345-7"
CALCIUM = "17861-6"
HEMOGLOBIN = "718-7"
PLATELETS = "777-3"
CREATININE = "2160-0"
INR = "6301-6"
LACTATE = "2524-7"
AST = "1920-8"
UNKNOWN_LOINC = "99999-9"

AMOXICILLIN = "723"
CEPHALEXIN = "2231"
CEFTRIAXONE = "2193"
IBUPROFEN = "5640"
NAPROXEN = "7258"
ACETAMINOPHEN = "161"
MORPHINE = "7052"
SULFAMETHOXAZOLE = "10180"
HEPARIN = "5224"
WARFARIN = "11289"

NORMAL_VITALS = {
    "heart_rate": 72.0,
    "systolic_bp": 120.0,
    "diastolic_bp": 80.0,
    "temperature_c": 37.0,
    "respiratory_rate": 16.0,
    "spo2": 98.0,
}


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


# --- result flags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3.4, "L"), (3.5, "N"), (4.2, "N"), (5.1, "N"), (5.2, "H")],
)
def test_a_result_is_flagged_against_its_reference_range_and_a_limit_itself_is_normal(
    value: float, expected: str
) -> None:
    # given potassium with reference range 3.5-5.1 mmol/L / when flagged / then as expected
    assert flag_result(POTASSIUM, value, "mmol/L", 3.5, 5.1) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2.7, "LL"), (2.8, "L"), (6.2, "H"), (6.3, "HH")],
)
def test_potassium_beyond_its_critical_limits_is_critical_and_the_limit_itself_is_not(
    value: float, expected: str
) -> None:
    # given critical limits 2.8 / 6.2 mmol/L / when flagged / then critical only beyond them
    assert flag_result(POTASSIUM, value, "mmol/L", 3.5, 5.1) == expected


def test_potassium_in_milliequivalents_is_critical_at_seven() -> None:
    # given potassium 7.0 mEq/L (the same as mmol/L)
    # when flagged against a reference range in mEq/L
    flag = flag_result(POTASSIUM, 7.0, "mEq/L", 3.5, 5.1)
    # then it is critically high
    assert flag == "HH"


@pytest.mark.parametrize(("value", "expected"), [(2.0, "LL"), (30.0, "HH"), (5.5, "N")])
def test_glucose_in_mmol_per_litre_is_compared_with_critical_limits_in_mg_per_decilitre(
    value: float, expected: str
) -> None:
    # given glucose in mmol/L with its reference range 3.9-7.8 mmol/L
    # when flagged (critical limits are 40 / 500 mg/dL)
    # then 2.0 mmol/L (36 mg/dL) is LL and 30 mmol/L (540 mg/dL) is HH
    assert flag_result(GLUCOSE, value, "mmol/L", 3.9, 7.8) == expected


def test_a_value_converted_exactly_onto_a_critical_limit_is_not_beyond_it() -> None:
    # given hemoglobin 70 g/L, which is 7.0 g/dL after an inexact multiplication by 0.1
    # when flagged / then it is low, not critical
    assert flag_result(HEMOGLOBIN, 70.0, "g/L", 120.0, 160.0) == "L"
    assert flag_result(HEMOGLOBIN, 69.0, "g/L", 120.0, 160.0) == "LL"


def test_creatinine_in_micromole_per_litre_is_flagged_in_its_own_unit() -> None:
    # given creatinine 300 umol/L against a reference range of 62-106 umol/L
    # when flagged / then it is high (creatinine has no critical limit)
    assert flag_result(CREATININE, 300.0, "\u03bcmol/L", 62.0, 106.0) == "H"


def test_critical_limits_apply_without_a_reference_range() -> None:
    # given INR and lactate results without reference ranges
    # then INR above 5.0 and lactate above 4.0 mmol/L are critical, and at the limit they are not
    assert flag_result(INR, 5.5, "INR", None, None) == "HH"
    assert flag_result(INR, 5.0, "{INR}", None, None) == "N"
    assert flag_result(LACTATE, 4.1, "mmol/L", None, None) == "HH"
    assert flag_result(LACTATE, 4.0, "mmol/L", None, None) == "N"


def test_platelets_in_ten_to_the_ninth_per_litre_use_the_same_critical_limits() -> None:
    assert flag_result(PLATELETS, 15.0, "10*9/L", 150.0, 400.0) == "LL"
    assert flag_result(PLATELETS, 1200.0, "K/uL", 150.0, 400.0) == "HH"


def test_a_code_with_critical_limits_in_an_unconvertible_unit_is_refused_not_passed() -> None:
    # given glucose in a unit the table cannot convert for it
    # when flagged / then a clear error, never a silent "N"
    with pytest.raises(UnknownUnitError) as refused:
        flag_result(GLUCOSE, 100.0, "%", 70.0, 110.0)
    assert refused.value.field == "unit"


def test_an_unknown_unit_spelling_is_refused_even_for_an_unknown_code() -> None:
    with pytest.raises(UnknownUnitError):
        flag_result(UNKNOWN_LOINC, 1.0, "mg per dL", 0.5, 2.0)


def test_an_unknown_code_is_flagged_against_its_reference_range_only() -> None:
    assert flag_result(UNKNOWN_LOINC, 3.0, "mg/L", 0.0, 2.0) == "H"
    assert flag_result(UNKNOWN_LOINC, 3.0, "mg/L", None, None) == "N"


def test_a_reference_range_upside_down_is_refused_on_reference_low() -> None:
    with pytest.raises(ClinicalRuleViolation) as refused:
        flag_result(SODIUM, 140.0, "mmol/L", 145.0, 135.0)
    assert refused.value.field == "reference_low"


def test_a_negative_concentration_or_a_non_finite_value_is_impossible() -> None:
    with pytest.raises(ImpossibleValueError):
        flag_result(SODIUM, -1.0, "mmol/L", 135.0, 145.0)
    with pytest.raises(ImpossibleValueError):
        flag_result(SODIUM, math.nan, "mmol/L", 135.0, 145.0)


def test_an_open_ended_reference_range_flags_on_its_one_limit() -> None:
    assert flag_result(AST, 50.0, "IU/L", None, 40.0) == "H"
    assert flag_result(AST, 5.0, "U/L", None, 40.0) == "N"


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [(None, 4.0, None), (4.0, 4.5, "up"), (4.5, 4.0, "down"), (4.0, 4.0, "same")],
)
def test_a_trend_compares_with_the_previous_result(
    previous: float | None, current: float, expected: str | None
) -> None:
    assert trend(previous, current) == expected


def _inner_range(code: str) -> tuple[float, float]:
    found = analyte(code)
    assert found is not None
    assert found.critical_low is not None
    assert found.critical_high is not None
    return found.critical_low, found.critical_high


@given(
    code=st.sampled_from([POTASSIUM, SODIUM, GLUCOSE, CALCIUM, HEMOGLOBIN, PLATELETS]),
    data=st.data(),
)
def test_a_value_strictly_inside_its_reference_range_and_critical_limits_is_normal(
    code: str, data: st.DataObject
) -> None:
    # given a value and a reference range around it, all inside the critical limits
    critical_low, critical_high = _inner_range(code)
    value = data.draw(st.floats(critical_low, critical_high, exclude_min=True, exclude_max=True))
    low = data.draw(st.floats(critical_low, value, exclude_max=True))
    high = data.draw(st.floats(value, critical_high, exclude_min=True))
    # when a value strictly inside it is flagged in the canonical unit
    found = analyte(code)
    assert found is not None
    # then it is normal
    assert flag_result(code, value, found.unit, low, high) == "N"


@given(value=st.floats(0.0, 60.0, allow_nan=False))
def test_glucose_gets_the_same_critical_flag_in_mmol_per_litre_and_in_mg_per_decilitre(
    value: float,
) -> None:
    # given one glucose concentration written in both units, without a reference range,
    # and not within rounding error of a critical limit (a converted value that close counts
    # as on the limit)
    in_mg_per_dl = value * 18.016
    assume(not any(math.isclose(in_mg_per_dl, limit, rel_tol=1e-6) for limit in (40.0, 500.0)))
    # when each is flagged / then the critical verdict agrees
    assert flag_result(GLUCOSE, value, "mmol/L", None, None) == flag_result(
        GLUCOSE, in_mg_per_dl, "mg/dL", None, None
    )


@given(
    value=st.floats(0.0, 2.8, exclude_max=True)
    | st.floats(6.2, 100.0, exclude_min=True, allow_infinity=False),
    low=st.none() | st.floats(0.0, 10.0),
)
def test_a_potassium_beyond_its_critical_limits_is_critical_whatever_the_reference_range(
    value: float, low: float | None
) -> None:
    # given any reference range / when a potassium beyond 2.8 or 6.2 is flagged
    flag = flag_result(POTASSIUM, value, "mmol/L", low, None)
    # then the critical flag overrides L and H
    assert flag == ("LL" if value < 2.8 else "HH")


# --- vital signs -----------------------------------------------------------------------------


def test_normal_vitals_raise_no_flag() -> None:
    assert check_vitals(NORMAL_VITALS) == {}


def test_out_of_range_vitals_are_flagged_low_or_high() -> None:
    # given a fast heart, low pressure, fever, fast breathing and low saturation
    values = {
        "heart_rate": 130.0,
        "systolic_bp": 85.0,
        "diastolic_bp": 50.0,
        "temperature_c": 39.2,
        "respiratory_rate": 28.0,
        "spo2": 89.0,
    }
    # when checked / then each is flagged
    assert check_vitals(values) == {
        "heart_rate": "H",
        "systolic_bp": "L",
        "diastolic_bp": "L",
        "temperature_c": "H",
        "respiratory_rate": "H",
        "spo2": "L",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("heart_rate", 60.0),
        ("heart_rate", 100.0),
        ("temperature_c", 36.1),
        ("temperature_c", 38.0),
        ("spo2", 94.0),
        ("spo2", 100.0),
        ("respiratory_rate", 12.0),
        ("respiratory_rate", 20.0),
    ],
)
def test_a_vital_equal_to_a_normal_limit_is_not_flagged(name: str, value: float) -> None:
    assert check_vitals({name: value}) == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("heart_rate", 900.0),
        ("heart_rate", -5.0),
        ("temperature_c", 60.0),
        ("temperature_c", 5.0),
        ("spo2", 101.0),
        ("systolic_bp", 400.0),
        ("respiratory_rate", math.inf),
        ("heart_rate", math.nan),
    ],
)
def test_an_impossible_vital_is_refused_with_its_possible_range(name: str, value: float) -> None:
    # given an impossible measurement
    # when checked
    with pytest.raises(ImpossibleValueError) as refused:
        check_vitals({**NORMAL_VITALS, name: value})
    # then the error names the vital and gives the possible range
    assert refused.value.field == name
    assert "possible range" in str(refused.value)


def test_heart_rate_900_is_refused_saying_what_is_possible() -> None:
    with pytest.raises(ImpossibleValueError, match=r"heart_rate 900 .*0 to 300"):
        check_vitals({"heart_rate": 900.0})


@pytest.mark.parametrize("diastolic", [120.0, 130.0])
def test_a_diastolic_pressure_not_below_the_systolic_is_refused(diastolic: float) -> None:
    with pytest.raises(ClinicalRuleViolation) as refused:
        check_vitals({"systolic_bp": 120.0, "diastolic_bp": diastolic})
    assert refused.value.field == "diastolic_bp"


def test_an_empty_set_of_vitals_is_refused() -> None:
    with pytest.raises(ClinicalRuleViolation):
        check_vitals({})


def test_an_unknown_vital_name_is_refused() -> None:
    with pytest.raises(ClinicalRuleViolation) as refused:
        check_vitals({"pulse": 70.0})
    assert refused.value.field == "pulse"
    assert not isinstance(refused.value, ImpossibleValueError)


# --- medications: doses ----------------------------------------------------------------------


def test_a_dose_above_the_maximum_single_dose_is_an_alert() -> None:
    # given amoxicillin, whose adult maximum single dose is 1000 mg
    # when 2000 mg is ordered
    alerts = dose_alerts(AMOXICILLIN, 2000.0, "mg")
    # then the alert says by how much it is over
    assert alerts == ["dose 2000 mg exceeds the maximum single dose of 1000 mg for amoxicillin"]


def test_a_dose_equal_to_the_maximum_is_no_alert() -> None:
    assert dose_alerts(AMOXICILLIN, 1000.0, "mg") == []
    assert dose_alerts(IBUPROFEN, 400.0, "MG") == []


def test_a_dose_in_grams_is_compared_in_milligrams() -> None:
    assert dose_alerts(AMOXICILLIN, 1.0, "g") == []
    assert dose_alerts(AMOXICILLIN, 1.5, "g") != []
    assert dose_alerts(ACETAMINOPHEN, 1_000_000.0, "mcg") == []


def test_heparin_is_dosed_in_units() -> None:
    assert dose_alerts(HEPARIN, 5000.0, "units") == []
    assert dose_alerts(HEPARIN, 50000.0, "[IU]") != []


def test_a_dose_unit_that_cannot_be_compared_with_the_maximum_is_an_alert_not_silence() -> None:
    # given warfarin ordered in millilitres
    alerts = dose_alerts(WARFARIN, 5.0, "mL")
    # then an alert says it could not be checked
    assert len(alerts) == 1
    assert "cannot be checked" in alerts[0]


def test_an_unknown_drug_gets_no_dose_alert_but_an_unknown_unit_is_refused() -> None:
    assert dose_alerts("999999999", 100000.0, "mg") == []
    with pytest.raises(UnknownUnitError) as refused:
        dose_alerts(AMOXICILLIN, 500.0, "tablets")
    assert refused.value.field == "dose_unit"


@pytest.mark.parametrize("dose", [0.0, -5.0, math.nan])
def test_a_dose_that_is_not_positive_is_impossible(dose: float) -> None:
    with pytest.raises(ImpossibleValueError):
        dose_alerts(AMOXICILLIN, dose, "mg")


@given(dose=st.floats(min_value=1e-3, max_value=800.0))
def test_any_ibuprofen_dose_up_to_800_mg_is_no_alert(dose: float) -> None:
    assert dose_alerts(IBUPROFEN, dose, "mg") == []


# --- medications: allergies ------------------------------------------------------------------


def test_the_drug_lookup_knows_ingredients_by_rxcui_and_by_product_name() -> None:
    found = drug(AMOXICILLIN)
    assert found is not None
    assert found.substance == "amoxicillin"
    assert "penicillins" in found.classes
    assert drug("0") is None
    assert drug_by_name("Amoxicillin 500 MG Oral Capsule") == found
    penicillin_v = drug_by_name("Penicillin V Potassium")
    assert penicillin_v is not None
    assert penicillin_v.code == "7984"
    assert drug_by_name("penicillin") is None


def test_a_penicillin_allergy_blocks_amoxicillin() -> None:
    # given a patient allergic to penicillin (free text, no code)
    allergies = [("Penicillin", None)]
    # when amoxicillin is ordered
    alerts = allergy_alerts(AMOXICILLIN, "amoxicillin", allergies)
    # then one alert names the allergy and the class
    assert alerts == [
        "allergy to Penicillin: amoxicillin is in the cross-reacting class penicillins"
    ]


def test_a_penicillin_allergy_blocks_cephalexin_by_cross_reactivity() -> None:
    alerts = allergy_alerts(CEPHALEXIN, "cephalexin", [("penicillin", None)])
    assert alerts == [
        "allergy to penicillin: cephalexin is in the cross-reacting class cephalosporins"
    ]


def test_an_amoxicillin_allergy_by_code_blocks_ceftriaxone_and_amoxicillin_itself() -> None:
    # given an allergy coded with the amoxicillin RXCUI
    allergies = [("Amoxil", AMOXICILLIN)]
    # then a cephalosporin cross-reacts and amoxicillin is the same substance
    assert allergy_alerts(CEFTRIAXONE, "ceftriaxone", allergies) == [
        "allergy to Amoxil: ceftriaxone is in the cross-reacting class cephalosporins"
    ]
    assert allergy_alerts(AMOXICILLIN, "amoxicillin", allergies) == [
        "allergy to Amoxil: same substance as amoxicillin"
    ]


def test_an_allergy_named_like_the_drug_is_the_same_substance_whatever_the_case() -> None:
    assert allergy_alerts(MORPHINE, "Morphine", [("MORPHINE", None)]) == [
        "allergy to MORPHINE: same substance as morphine"
    ]


def test_an_allergy_with_the_drug_code_matches_even_for_a_drug_we_do_not_know() -> None:
    # given a product code the reference data lacks and an allergy coded with it
    alerts = allergy_alerts("1234567", "Novel-mab", [("novel antibody", "1234567")])
    # then it is the same substance
    assert alerts == ["allergy to novel antibody: same substance as Novel-mab"]


def test_ibuprofen_is_an_alert_for_a_patient_with_an_aspirin_allergy() -> None:
    # given an aspirin allergy (aspirin-exacerbated respiratory disease)
    # when ibuprofen or naproxen is ordered
    ibuprofen = allergy_alerts(IBUPROFEN, "ibuprofen", [("aspirin", None)])
    naproxen = allergy_alerts(NAPROXEN, "naproxen", [("Aspirin", "1191")])
    # then both cross-react as NSAIDs, while acetaminophen does not
    assert ibuprofen == ["allergy to aspirin: ibuprofen is in the cross-reacting class nsaids"]
    assert naproxen == ["allergy to Aspirin: naproxen is in the cross-reacting class nsaids"]
    assert allergy_alerts(ACETAMINOPHEN, "acetaminophen", [("aspirin", None)]) == []


def test_a_sulfa_allergy_blocks_sulfamethoxazole_and_codeine_allergy_blocks_morphine() -> None:
    assert allergy_alerts(SULFAMETHOXAZOLE, "sulfamethoxazole", [("Sulfa", None)]) != []
    assert allergy_alerts(MORPHINE, "morphine", [("codeine", None)]) == [
        "allergy to codeine: morphine is in the cross-reacting class phenanthrene-opioids"
    ]


def test_a_product_name_is_enough_to_find_the_class_of_an_uncoded_drug() -> None:
    # given a clinical-drug code the table lacks, named as a product
    alerts = allergy_alerts("308182", "Amoxicillin 250 MG Oral Capsule", [("PCN", None)])
    # then the penicillin allergy still alerts
    assert alerts == ["allergy to PCN: amoxicillin is in the cross-reacting class penicillins"]


def test_unrelated_allergies_raise_no_alert_and_duplicates_are_reported_once() -> None:
    # given allergies unrelated to the drug, and one repeated
    allergies = [("latex", None), ("sulfa", None), ("penicillin", None), ("penicillin", None)]
    # when warfarin is ordered / then nothing; when amoxicillin is, one alert
    assert allergy_alerts(WARFARIN, "warfarin", allergies) == []
    assert len(allergy_alerts(AMOXICILLIN, "amoxicillin", allergies)) == 1


def test_a_shared_class_without_a_cross_reactivity_rule_is_no_alert() -> None:
    # given a ciprofloxacin allergy; citalopram also prolongs the QT interval
    # then that shared class is no allergy
    assert allergy_alerts("2556", "citalopram", [("ciprofloxacin", "2551")]) == []


def test_warfarin_with_an_nsaid_and_ace_inhibitor_with_spironolactone_interact() -> None:
    from events.domain.rules.interactions import duplicate_therapy_alerts, interaction_alerts

    assert interaction_alerts("5640", "ibuprofen", [("11289", "warfarin")])[0].startswith(
        "interaction (major): ibuprofen with warfarin"
    )
    assert interaction_alerts("9997", "spironolactone", [("29046", "lisinopril")])
    assert "serotonin" in interaction_alerts("8123", "phenelzine", [("36437", "sertraline")])[0]
    assert interaction_alerts("703", "amiodarone", [("2556", "citalopram")])
    assert interaction_alerts("6809", "metformin", [("11289", "warfarin")]) == []
    assert duplicate_therapy_alerts("7258", "naproxen", [("5640", "ibuprofen")])
    assert duplicate_therapy_alerts("6809", "metformin", [("29046", "lisinopril")]) == []
