"""Accepted means visible: text and clinical times the store refuses, with a clear error."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam, GrantBreakGlass
from events.commands.observations import RecordVitals
from events.commands.patients import RecordAllergy, RegisterPatient
from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads.patients import AllergyRecorded
from events.domain.text import TextRefused, clean_text
from tests.unit.conftest import ADMIN, NURSE, FakeClock, account, ctx


def registered(store: ClinicalStore, born: date = date(1961, 5, 4)) -> UUID:
    return store.register_patient(
        ctx(), RegisterPatient("MRN-T1", "Okafor", ("Ada",), born, "female")
    ).id


# --- text -------------------------------------------------------------------------------------
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\ud800"])
def test_control_and_invisible_characters_are_refused_in_any_text(char: str) -> None:
    # given a substance name with a control, bidi override or lone surrogate in it
    # when it is cleaned / then it is refused, naming the code point and never the text
    with pytest.raises(TextRefused, match=f"U\\+{ord(char):04X}"):
        clean_text(f"peni{char}cillin")


def test_tab_and_newline_are_allowed_only_in_notes() -> None:
    with pytest.raises(TextRefused):
        clean_text("line one\nline two")
    assert clean_text("line one\n\tline two", multiline=True) == "line one\n\tline two"
    with pytest.raises(TextRefused):
        clean_text("carriage\rreturn", multiline=True)


def test_text_is_stored_in_nfc() -> None:
    decomposed = "Jose\u0301"  # e + combining acute
    assert clean_text(decomposed) == "Jos\u00e9"
    allergy = AllergyRecorded.model_validate(
        {
            "allergy_id": "6f1d2f7e-5b7a-4d3c-9a51-0c1b8e2a7d10",
            "substance": decomposed,
            "reaction": "rash",
            "severity": "mild",
        }
    )
    assert allergy.substance == "Jos\u00e9"


@given(st.text(max_size=40))
def test_whatever_is_accepted_is_nfc_and_free_of_control_characters(text: str) -> None:
    try:
        cleaned = clean_text(text, multiline=True)
    except TextRefused:
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert all(c in "\t\n" or unicodedata.category(c) != "Cc" for c in cleaned)


def test_a_nul_in_an_allergy_is_refused_and_nothing_is_stored(store: ClinicalStore) -> None:
    patient = registered(store)
    head = store.event_log.head()
    with pytest.raises(ValidationError, match="U\\+0000"):
        store.record_allergy(ctx(NURSE), RecordAllergy(patient, "latex\x00", "rash", "mild"))
    assert store.event_log.head() == head


def test_a_reason_with_a_control_character_is_refused(store: ClinicalStore) -> None:
    patient = registered(store)
    with pytest.raises(ClinicalRuleViolation) as refused:
        store.grant_break_glass(
            ctx(reason="emergency\x1b[2J"),
            GrantBreakGlass(patient, timedelta(hours=1)),
        )
    assert refused.value.field == "reason"


def test_overlong_names_are_refused(store: ClinicalStore) -> None:
    with pytest.raises(ValidationError):
        store.register_patient(
            ctx(), RegisterPatient("MRN-T2", "x" * 201, ("Ada",), date(1961, 5, 4), "female")
        )


# --- clinical time ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # once a 500 (overflow)
        datetime(1899, 12, 31, 23, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_clinical_times_out_of_range_are_refused_clearly(
    store: ClinicalStore, occurred_at: datetime
) -> None:
    patient = registered(store)
    with pytest.raises(ClinicalRuleViolation) as refused:
        store.record_vitals(
            ctx(NURSE, occurred_at=occurred_at),
            RecordVitals(patient, heart_rate=80),
        )
    assert refused.value.field == "occurred_at"


def test_a_clinical_time_before_the_patients_birth_is_refused(
    store: ClinicalStore, clock: FakeClock
) -> None:
    # given a patient born in 1961
    patient = registered(store, date(1961, 5, 4))
    # when vitals are dated 1900 / then refused; the day of birth is fine
    with pytest.raises(ClinicalRuleViolation, match="birth"):
        store.record_vitals(
            ctx(NURSE, occurred_at=datetime(1900, 1, 1, tzinfo=UTC)),
            RecordVitals(patient, heart_rate=80),
        )
    store.record_vitals(
        ctx(NURSE, occurred_at=datetime(1961, 5, 4, 12, tzinfo=UTC)),
        RecordVitals(patient, heart_rate=80),
    )


def test_care_team_changes_are_checked_against_the_birth_date_too(store: ClinicalStore) -> None:
    patient = registered(store, date(1961, 5, 4))
    physician = account(store, "physician.t", "physician")
    with pytest.raises(ClinicalRuleViolation, match="birth"):
        store.change_care_team(
            ctx(ADMIN, occurred_at=datetime(1950, 1, 1, tzinfo=UTC)),
            ChangeCareTeam(patient, physician, "added"),
        )


@pytest.mark.parametrize("blank", ["", "   ", "\t \t"])
def test_blank_text_is_refused_not_stored_empty(store: ClinicalStore, blank: str) -> None:
    # found: a substance of "   " was accepted and stored as ""
    patient = registered(store, date(1961, 5, 4))
    with pytest.raises(ValidationError):
        store.record_allergy(ctx(NURSE), RecordAllergy(patient, blank, "rash", "mild"))
