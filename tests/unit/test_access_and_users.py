"""Care teams, break-glass and user accounts on the write side."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam, GrantBreakGlass
from events.commands.users import (
    ChangeUserRole,
    CreateUser,
    DeactivateUser,
    RecordPasswordChange,
    RevokeUserSessions,
)
from events.domain.aggregates import users
from events.domain.aggregates.users import DuplicateUsername
from events.domain.envelope import Actor
from events.domain.errors import ClinicalRuleViolation, NotFound, ReasonRequired
from tests.unit.conftest import ADMIN, NURSE, PHYSICIAN, FakeClock, account, ctx
from tests.unit.test_write_side import registered


def test_care_team_membership_grants_access_to_that_patient_only(store: ClinicalStore) -> None:
    patient_a, patient_b = registered(store, "MRN-A"), registered(store, "MRN-B")
    nurse = account(store, "nurse.a", "nurse")
    store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient_a, nurse, "added"))

    assert store.may_access(nurse, patient_a) == (True, False)
    assert store.may_access(nurse, patient_b) == (False, False)
    with pytest.raises(ClinicalRuleViolation):
        store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient_a, nurse, "added"))
    store.change_care_team(
        ctx(ADMIN, reason="moved to another ward"), ChangeCareTeam(patient_a, nurse, "removed")
    )
    assert store.may_access(nurse, patient_a) == (False, False)


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

    # (a privileged role is a request a second administrator approves: tests/unit/
    # test_separation_of_duties.py)
    store.change_user_role(ctx(), ChangeUserRole(created.id, "pharmacist"))

    assert [e.event_type for e in store.events_of(created.id)] == [
        "user.created",
        "user.roles_changed",
    ]


def test_a_deactivated_account_is_inactive_and_stays_so(store: ClinicalStore) -> None:
    nurse = store.create_user(ctx(ADMIN), CreateUser("n.joy", "Nurse Joy", "nurse")).id
    with pytest.raises(ReasonRequired):
        store.deactivate_user(ctx(ADMIN), DeactivateUser(nurse))

    store.deactivate_user(ctx(ADMIN, reason="left the hospital"), DeactivateUser(nurse))

    user = store.load(nurse, users.evolve)
    assert user is not None and not user.active
    with pytest.raises(ClinicalRuleViolation, match="already deactivated"):
        store.deactivate_user(ctx(ADMIN, reason="again"), DeactivateUser(nurse))
    with pytest.raises(ClinicalRuleViolation, match="deactivated"):
        store.change_user_role(ctx(ADMIN), ChangeUserRole(nurse, "physician"))
    assert [e.event_type for e in store.events_of(nurse)] == ["user.created", "user.deactivated"]


def test_nobody_deactivates_their_own_account(store: ClinicalStore) -> None:
    admin = store.create_user(ctx(ADMIN), CreateUser("root.admin", "Root", "admin")).id
    own = Actor(user_id=admin, role="admin")

    with pytest.raises(ClinicalRuleViolation, match="your own account"):
        store.deactivate_user(ctx(own, reason="leaving"), DeactivateUser(admin))
    with pytest.raises(NotFound):
        store.deactivate_user(ctx(ADMIN, reason="typo"), DeactivateUser(uuid4()))


def test_password_changes_and_session_revocations_are_recorded_on_the_user(
    store: ClinicalStore,
) -> None:
    nurse = store.create_user(ctx(ADMIN), CreateUser("n.ratched", "Nurse Ratched", "nurse")).id

    store.record_password_change(ctx(NURSE), RecordPasswordChange(nurse, 2))
    store.revoke_user_sessions(ctx(ADMIN, reason="stolen laptop"), RevokeUserSessions(nurse, 1))

    events = list(store.events_of(nurse))
    assert [e.event_type for e in events] == [
        "user.created",
        "user.password_changed",
        "user.sessions_revoked",
    ]
    assert events[-1].reason == "stolen laptop"
    user = store.load(nurse, users.evolve)
    assert user is not None and user.active and user.version == 3
