"""Care teams, break-glass and user accounts on the write side."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam, GrantBreakGlass
from events.commands.users import ChangeUserRole, CreateUser
from events.domain.aggregates.users import DuplicateUsername
from events.domain.errors import ClinicalRuleViolation, ReasonRequired
from tests.unit.conftest import NURSE, PHYSICIAN, FakeClock, ctx
from tests.unit.test_write_side import registered


def test_care_team_membership_grants_access_to_that_patient_only(store: ClinicalStore) -> None:
    patient_a, patient_b = registered(store, "MRN-A"), registered(store, "MRN-B")
    store.change_care_team(ctx(), ChangeCareTeam(patient_a, NURSE.user_id, "added"))

    assert store.may_access(NURSE.user_id, patient_a) == (True, False)
    assert store.may_access(NURSE.user_id, patient_b) == (False, False)
    with pytest.raises(ClinicalRuleViolation):
        store.change_care_team(ctx(), ChangeCareTeam(patient_a, NURSE.user_id, "added"))
    store.change_care_team(ctx(), ChangeCareTeam(patient_a, NURSE.user_id, "removed"))
    assert store.may_access(NURSE.user_id, patient_a) == (False, False)


def test_break_glass_needs_a_reason_and_expires(store: ClinicalStore, clock: FakeClock) -> None:
    patient = registered(store)
    with pytest.raises(ReasonRequired):
        store.grant_break_glass(ctx(NURSE), GrantBreakGlass(patient, timedelta(hours=1)))
    store.grant_break_glass(
        ctx(NURSE, reason="cardiac arrest"), GrantBreakGlass(patient, timedelta(hours=1))
    )

    assert store.may_access(NURSE.user_id, patient) == (True, True)
    assert store.may_access(PHYSICIAN.user_id, patient) == (False, False)
    clock.advance(hours=1, seconds=1)
    assert store.may_access(NURSE.user_id, patient) == (False, False)


def test_usernames_are_unique_and_roles_change_through_events(store: ClinicalStore) -> None:
    created = store.create_user(ctx(), CreateUser("dr.house", "Gregory House", "physician"))
    with pytest.raises(DuplicateUsername) as duplicate:
        store.create_user(ctx(), CreateUser("Dr.House", "Someone", "nurse"))
    assert duplicate.value.existing_id == created.id

    store.change_user_role(ctx(), ChangeUserRole(created.id, "compliance"))

    assert [e.event_type for e in store.events_of(created.id)] == [
        "user.created",
        "user.roles_changed",
    ]
