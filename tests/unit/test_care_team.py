"""Care team as governed data: who may change it, whom it may take, and why."""

from __future__ import annotations

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.domain.errors import (
    ClinicalRuleViolation,
    NotPermitted,
    ReasonRequired,
    SelfGrantRefused,
)
from tests.unit.conftest import ADMIN, account, ctx
from tests.unit.test_write_side import registered


def test_a_physician_not_on_the_team_can_add_neither_themself_nor_anyone(
    store: ClinicalStore,
) -> None:
    # given a patient and a physician who does not treat them
    patient = registered(store)
    physician = Actor(user_id=account(store, "dr.stranger", "physician"), role="physician")
    nurse = account(store, "nurse.n", "nurse")

    # then they can neither add themself (self-grant) nor someone else
    with pytest.raises(SelfGrantRefused, match="break the glass"):
        store.change_care_team(ctx(physician), ChangeCareTeam(patient, physician.user_id, "added"))
    with pytest.raises(NotPermitted, match="administrator or a member"):
        store.change_care_team(ctx(physician), ChangeCareTeam(patient, nurse, "added"))
    assert store.may_access(physician.user_id, patient) == (False, False)


def test_a_member_adds_a_colleague_and_removes_one_only_with_a_reason(
    store: ClinicalStore,
) -> None:
    patient = registered(store)
    physician = Actor(user_id=account(store, "dr.member", "physician"), role="physician")
    nurse = account(store, "nurse.m", "nurse")
    store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, physician.user_id, "added"))

    store.change_care_team(ctx(physician), ChangeCareTeam(patient, nurse, "added"))
    assert store.may_access(nurse, patient) == (True, False)

    with pytest.raises(ReasonRequired):
        store.change_care_team(ctx(physician), ChangeCareTeam(patient, nurse, "removed"))
    store.change_care_team(
        ctx(physician, reason="shift ended"), ChangeCareTeam(patient, nurse, "removed")
    )
    assert store.may_access(nurse, patient) == (False, False)


@pytest.mark.parametrize("role", ["billing", "front_desk", "lab_tech", "compliance", "admin"])
def test_only_clinical_users_join_a_care_team(store: ClinicalStore, role: str) -> None:
    patient = registered(store)
    user = account(store, f"someone.{role}", role)
    with pytest.raises(ClinicalRuleViolation, match="cannot be on a care team"):
        store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, user, "added"))


def test_a_user_that_does_not_exist_is_refused(store: ClinicalStore) -> None:
    patient = registered(store)
    nobody = store.new_id()
    with pytest.raises(ClinicalRuleViolation, match="there is no user"):
        store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, nobody, "added"))


def test_the_backbone_itself_may_change_a_team_and_the_event_says_the_role(
    store: ClinicalStore,
) -> None:
    # imports and (later) encounters act as the system actor
    patient = registered(store)
    pharmacist = account(store, "pharm.p", "pharmacist")
    store.change_care_team(ctx(SYSTEM_ACTOR), ChangeCareTeam(patient, pharmacist, "added"))

    last = list(store.event_log.of_patient(patient))[-1]
    assert last.event.event_type == "care_team.changed"
    assert last.event.payload.model_dump()["role"] == "pharmacist"
