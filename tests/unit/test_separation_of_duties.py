"""Two people for power: privileged accounts and roles, erasure, and puppet accounts."""

from __future__ import annotations

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.commands.patients import ErasePatient
from events.commands.users import ApproveUser, ChangeUserRole, CreateUser
from events.domain.aggregates import users
from events.domain.envelope import Actor
from events.domain.errors import NotPermitted
from tests.unit.conftest import account, ctx
from tests.unit.test_write_side import registered


def admin(store: ClinicalStore, name: str) -> Actor:
    return Actor(user_id=account(store, name, "admin"), role="admin")


def test_an_admin_made_by_an_admin_waits_for_a_second_admin(store: ClinicalStore) -> None:
    # given two administrators set up by the backbone
    alice, bob = admin(store, "alice"), admin(store, "bob")

    # when alice creates a compliance account
    made = store.create_user(ctx(alice), CreateUser("carol", "Carol", "compliance")).id
    pending = store.load(made, users.evolve)

    # then it cannot log in until somebody other than alice approves it
    assert pending is not None and not pending.may_log_in and pending.pending_role == "compliance"
    with pytest.raises(NotPermitted, match="second administrator"):
        store.approve_user(ctx(alice), ApproveUser(made))
    store.approve_user(ctx(bob), ApproveUser(made))
    approved = store.load(made, users.evolve)
    assert approved is not None and approved.may_log_in and approved.role == "compliance"
    assert [e.event_type for e in store.events_of(made)] == ["user.created", "user.approved"]


def test_an_elevation_keeps_the_old_role_until_approved_and_never_by_a_puppet(
    store: ClinicalStore,
) -> None:
    alice, bob = admin(store, "alice"), admin(store, "bob")
    nurse = account(store, "nina", "nurse")
    # alice makes herself a puppet: an admin account she created (approved by bob) ...
    puppet_id = store.create_user(ctx(alice), CreateUser("alice2", "Alice Two", "admin")).id
    store.approve_user(ctx(bob), ApproveUser(puppet_id))
    puppet = Actor(user_id=puppet_id, role="admin")

    # ... then asks for the nurse to become an admin
    store.change_user_role(ctx(alice), ChangeUserRole(nurse, "admin"))
    waiting = store.load(nurse, users.evolve)
    assert waiting is not None and waiting.role == "nurse" and waiting.pending_role == "admin"

    # the puppet may not approve alice's request, the nurse may not approve herself; bob may
    with pytest.raises(NotPermitted, match="created by the requester"):
        store.approve_user(ctx(puppet), ApproveUser(nurse))
    with pytest.raises(NotPermitted):
        store.approve_user(ctx(Actor(user_id=nurse, role="nurse")), ApproveUser(nurse))
    store.approve_user(ctx(bob), ApproveUser(nurse))
    promoted = store.load(nurse, users.evolve)
    assert promoted is not None and promoted.role == "admin" and promoted.pending_role is None


def test_a_requester_cannot_approve_their_own_erasure_through_an_account_they_created(
    store: ClinicalStore,
) -> None:
    alice, bob = admin(store, "alice"), admin(store, "bob")
    puppet_id = store.create_user(ctx(alice), CreateUser("alice2", "Alice Two", "compliance")).id
    store.approve_user(ctx(bob), ApproveUser(puppet_id))
    patient = registered(store)

    store.request_erasure(ctx(alice, reason="patient request"), ErasePatient(patient, "GDPR"))
    with pytest.raises(NotPermitted, match="created by the requester"):
        store.request_erasure(
            ctx(Actor(user_id=puppet_id, role="compliance"), reason="approve"),
            ErasePatient(patient, "GDPR"),
        )
    _, erased = store.request_erasure(ctx(bob, reason="approve"), ErasePatient(patient, "GDPR"))
    assert erased


def test_an_admin_cannot_open_charts_through_an_account_they_created(
    store: ClinicalStore,
) -> None:
    alice, bob = admin(store, "alice"), admin(store, "bob")
    made = store.create_user(ctx(alice), CreateUser("dr.made", "Dr Made", "physician")).id
    patient = registered(store)

    with pytest.raises(NotPermitted, match="account you created"):
        store.change_care_team(ctx(alice), ChangeCareTeam(patient, made, "added"))
    store.change_care_team(ctx(bob), ChangeCareTeam(patient, made, "added"))
    assert store.may_access(made, patient) == (True, False)
