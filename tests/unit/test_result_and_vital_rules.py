"""The clinical rules as narratives: laboratory result flags, trends and vital signs."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError, UnknownUnitError
from events.domain.rules.reference import analyte
from events.domain.rules.results import flag_result, trend
from events.domain.rules.vitals import check_vitals
from tests.unit.rules_helpers import (
    AST,
    CALCIUM,
    CREATININE,
    GLUCOSE,
    HEMOGLOBIN,
    INR,
    LACTATE,
    PLATELETS,
    POTASSIUM,
    SODIUM,
    UNKNOWN_LOINC,
)

NORMAL_VITALS = {
    "heart_rate": 72.0,
    "systolic_bp": 120.0,
    "diastolic_bp": 80.0,
    "temperature_c": 37.0,
    "respiratory_rate": 16.0,
    "spo2": 98.0,
}


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
