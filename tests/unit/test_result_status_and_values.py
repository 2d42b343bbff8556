"""Results a clinician can rely on, as narratives: statuses, non-numeric values, critical
limits with their sources, re-notification and escalation decided by the order aggregate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError
from events.domain.rules.reference import analyte
from events.domain.rules.results import (
    amended_status,
    flag_result,
    flag_value,
    parse_value,
    received_status,
)

THIRTY_MINUTES = timedelta(minutes=30)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "value", "comparator", "text"),
    [
        (6.9, 6.9, None, None),
        ("6.9", 6.9, None, None),
        ("<0.01", 0.01, "<", "<0.01"),
        (" >= 1000 ", 1000.0, ">=", ">= 1000"),
        ("\u22643", 3.0, "<=", "\u22643"),
        ("positive", None, None, "positive"),
        ("< 0.01 approx", None, None, "< 0.01 approx"),
    ],
)
def test_a_reported_value_is_a_number_a_number_with_its_comparator_or_text(
    reported: float | str, value: float | None, comparator: str | None, text: str | None
) -> None:
    parsed = parse_value(reported)
    assert (parsed.value, parsed.comparator, parsed.text) == (value, comparator, text)
    assert parsed.value_type == ("text" if value is None else "numeric")


def test_text_gets_no_numeric_flag() -> None:
    # given a qualitative result / when flagged / then no numeric flag, even for a known code
    assert flag_value("2823-3", parse_value("positive"), None, 3.5, 5.1) is None


@pytest.mark.parametrize(
    ("code", "reported", "unit", "low", "high", "expected"),
    [
        # every value above 1000 mg/dL is beyond the critical high of 500: HH
        ("2345-7", ">1000", "mg/dL", 70, 99, "HH"),
        # below 0.01 mg/dL glucose: every value is below the critical low of 40: LL
        ("2345-7", "<0.01", "mg/dL", 70, 99, "LL"),
        # below 0.01 ng/mL troponin, from the possible minimum 0 up: all normal
        ("10839-9", "<0.01", "ng/mL", None, 0.04, "N"),
        # below 5 mmol/L potassium could be L or N: no flag
        ("2823-3", "<5", "mmol/L", 3.5, 5.1, None),
        # above 5.1 could be H or HH: no flag; above 6.2 is HH whatever it is
        ("2823-3", ">5.1", "mmol/L", 3.5, 5.1, None),
        ("2823-3", ">6.2", "mmol/L", 3.5, 5.1, "HH"),
        # at least 6.2 includes 6.2 itself, which is not beyond the limit: no flag
        ("2823-3", ">=6.2", "mmol/L", 3.5, 5.1, None),
        # an unknown code: only the reference range, unbounded below
        ("99999-9", ">10", "mg/dL", 1, 10, "H"),
        ("99999-9", "<1", "mg/dL", 1, 10, "L"),
        ("99999-9", "<5", "mg/dL", None, 10, "N"),
    ],
)
def test_a_comparator_value_is_flagged_only_when_every_value_it_allows_has_that_flag(
    code: str,
    reported: str,
    unit: str,
    low: float | None,
    high: float | None,
    expected: str | None,
) -> None:
    assert flag_value(code, parse_value(reported), unit, low, high) == expected


def test_a_comparator_bound_below_the_possible_minimum_is_impossible() -> None:
    with pytest.raises(ImpossibleValueError):
        flag_value("2823-3", parse_value("<0"), "mmol/L", 3.5, 5.1)
    assert flag_value("2823-3", parse_value("<=0"), "mmol/L", 3.5, 5.1) == "LL"


def test_a_number_needs_a_unit() -> None:
    with pytest.raises(ClinicalRuleViolation, match="unit"):
        flag_value("2823-3", parse_value("4.2"), None, 3.5, 5.1)


# --- critical limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "unit", "low_value", "high_value"),
    [
        ("2339-0", "mg/dL", 45, 500),  # glucose, whole blood (point of care)
        ("2339-0", "mmol/L", 2.5, 30),
        ("6298-4", "mmol/L", 2.5, 6.8),  # potassium, whole blood
        ("2947-0", "mmol/L", 115, 165),  # sodium, whole blood
        ("10839-9", "ng/mL", None, 1.2),  # troponin I
        ("10839-9", "pg/mL", None, 450),
        ("2744-1", "[pH]", 7.05, 7.7),  # arterial pH
        ("2019-8", "mm[Hg]", 15, 75),  # arterial pCO2
        ("1994-3", "mmol/L", 0.6, 1.7),  # ionised calcium
        ("19123-9", "mg/dL", 0.8, 5.1),  # magnesium
        ("2777-1", "mg/dL", 0.7, 9.5),  # phosphate
        ("3173-2", "s", None, 120),  # aPTT
        ("14979-9", "s", None, 120),
        ("751-8", "10*3/uL", 0.3, None),  # neutrophils
    ],
)
def test_the_new_critical_limits_flag_whole_blood_and_acute_care_codes(
    code: str, unit: str, low_value: float | None, high_value: float | None
) -> None:
    if low_value is not None:
        assert flag_result(code, low_value, unit, None, None) == "LL"
    if high_value is not None:
        assert flag_result(code, high_value, unit, None, None) == "HH"


@pytest.mark.parametrize(
    "code",
    [
        "2339-0",
        "6298-4",
        "2947-0",
        "10839-9",
        "2744-1",
        "2019-8",
        "1994-3",
        "19123-9",
        "2777-1",
        "3173-2",
        "14979-9",
        "751-8",
    ],
)
def test_each_new_critical_limit_cites_its_source(code: str) -> None:
    found = analyte(code)
    assert found is not None and found.source is not None
    assert found.critical_low is not None or found.critical_high is not None


def test_whole_blood_limits_equal_to_a_limit_are_not_critical() -> None:
    assert flag_result("6298-4", 6.2, "mmol/L", 3.5, 5.1) == "H"
    assert flag_result("2947-0", 120, "mmol/L", 135, 145) == "L"
    assert flag_result("2339-0", 60, "mg/dL", 70, 99) == "L"


# --- statuses --------------------------------------------------------------------------------


def test_a_new_result_is_preliminary_or_final_and_never_corrected() -> None:
    assert received_status("preliminary") == "preliminary"
    assert received_status("final") == "final"
    with pytest.raises(ClinicalRuleViolation, match="amends"):
        received_status("corrected")


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        ("preliminary", None, ("final", False)),
        ("preliminary", "final", ("final", False)),
        ("preliminary", "preliminary", ("preliminary", False)),
        ("final", None, ("corrected", True)),
        ("final", "corrected", ("corrected", True)),
        ("corrected", None, ("corrected", True)),
    ],
)
def test_an_amendment_finalises_a_preliminary_result_or_corrects_a_final_one(
    current: str, requested: str | None, expected: tuple[str, bool]
) -> None:
    assert amended_status(current, requested) == expected


@pytest.mark.parametrize(
    ("current", "requested"),
    [("preliminary", "corrected"), ("final", "final"), ("final", "preliminary")],
)
def test_a_final_result_is_not_made_final_or_preliminary_again(
    current: str, requested: str
) -> None:
    with pytest.raises(ClinicalRuleViolation):
        amended_status(current, requested)
