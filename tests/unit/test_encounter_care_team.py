"""The care team follows the encounter: the attending, the consulting physicians and the
ward's staff join when it starts or moves, and leave one grace period after it ends or moves
away; manual members stay; wards' staff are data that administrators keep."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.commands.encounters import (
    EndEncounter,
    StartEncounter,
    TransferEncounter,
    UpdateEncounter,
)
from events.commands.patients import RegisterPatient
from events.commands.users import CreateUser, DeactivateUser
from events.commands.wards import ChangeWardStaff
from events.domain.aggregates import access
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.domain.errors import ClinicalRuleViolation, NotPermitted
from tests.unit.conftest import ADMIN, FakeClock, account, ctx

GRACE = timedelta(hours=24)


@pytest.fixture
def people(store: ClinicalStore) -> dict[str, UUID]:
    return {
        "attending": account(store, "dr.grey", "physician"),
        "consultant": account(store, "dr.yang", "physician"),
        "cardio_nurse": account(store, "nurse.cardio", "nurse"),
        "icu_nurse": account(store, "nurse.icu", "nurse"),
        "manual_nurse": account(store, "nurse.manual", "nurse"),
    }


@pytest.fixture
def patient(store: ClinicalStore) -> UUID:
    cmd = RegisterPatient("MRN-7001", "Okafor", ("Ada",), date(1961, 4, 2), "female")
    return store.register_patient(ctx(ADMIN), cmd).id


def staff(store: ClinicalStore, ward: str, user: UUID) -> None:
    store.change_ward_staff(ctx(ADMIN), ChangeWardStaff(ward, user, "assigned"))


def on_team(store: ClinicalStore, patient: UUID, user: UUID) -> bool:
    return store.may_access(user, patient) == (True, False)


def test_admit_transfer_discharge_moves_the_team_with_the_patient(
    store: ClinicalStore, clock: FakeClock, people: dict[str, UUID], patient: UUID
) -> None:
    # given nurses assigned to two wards and a nurse on the team by hand
    staff(store, "Cardiology", people["cardio_nurse"])
    staff(store, "ICU", people["icu_nurse"])
    store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, people["manual_nurse"], "added"))
    # when the patient is admitted to cardiology with a consultant
    admit = StartEncounter(
        patient,
        "inpatient",
        "Cardiology",
        people["attending"],
        consulting_ids=(people["consultant"],),
    )
    encounter = store.start_encounter(ctx(ADMIN), admit).id
    # then the attending, the consultant and the ward's nurse joined, naming the encounter
    for who in ("attending", "consultant", "cardio_nurse", "manual_nurse"):
        assert on_team(store, patient, people[who]), who
    assert not on_team(store, patient, people["icu_nurse"])
    joined = [e for e in store.events_of(access.care_team_id(patient)) if e.actor == SYSTEM_ACTOR]
    assert {e.payload.user_id for e in joined} == {  # type: ignore[attr-defined]
        people["attending"],
        people["consultant"],
        people["cardio_nurse"],
    }
    assert {e.reason for e in joined} == {f"encounter {encounter}"}
    assert {e.payload.encounter_id for e in joined} == {encounter}  # type: ignore[attr-defined]

    # when the patient moves to the ICU
    store.transfer_encounter(ctx(ADMIN), TransferEncounter(encounter, "ICU", bed="4"))
    # then the ICU nurse joins at once and the cardiology nurse stays for the grace period
    assert on_team(store, patient, people["icu_nurse"])
    assert on_team(store, patient, people["cardio_nurse"])
    team = store.care_team(patient)
    assert team is not None
    assert team.leaves_at(people["cardio_nurse"]) == clock.now + GRACE
    clock.advance(hours=24, seconds=1)
    assert not on_team(store, patient, people["cardio_nurse"])
    assert on_team(store, patient, people["icu_nurse"])

    # when the patient is discharged
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter, "home"))
    # then everyone the encounter brought stays until the grace period ends, then leaves;
    # the nurse added by hand stays
    for who in ("attending", "consultant", "icu_nurse"):
        assert on_team(store, patient, people[who]), who
    clock.advance(hours=24, seconds=1)
    for who in ("attending", "consultant", "icu_nurse"):
        assert not on_team(store, patient, people[who]), who
    assert on_team(store, patient, people["manual_nurse"])


def test_a_readmission_within_the_grace_period_keeps_the_team(
    store: ClinicalStore, clock: FakeClock, people: dict[str, UUID], patient: UUID
) -> None:
    first = store.start_encounter(
        ctx(ADMIN), StartEncounter(patient, "emergency", "ED", people["attending"])
    ).id
    store.end_encounter(ctx(ADMIN), EndEncounter(first, "home"))
    clock.advance(hours=2)
    store.start_encounter(
        ctx(ADMIN), StartEncounter(patient, "inpatient", "Ward 3", people["attending"])
    )
    clock.advance(hours=30)
    assert on_team(store, patient, people["attending"])


def test_a_new_attending_and_a_removed_consultant_leave_after_the_grace(
    store: ClinicalStore, clock: FakeClock, people: dict[str, UUID], patient: UUID
) -> None:
    encounter = store.start_encounter(
        ctx(ADMIN),
        StartEncounter(
            patient,
            "inpatient",
            "Ward 3",
            people["attending"],
            consulting_ids=(people["consultant"],),
        ),
    ).id
    other = account(store, "dr.webber", "physician")
    store.update_encounter(
        ctx(ADMIN),
        UpdateEncounter(encounter, attending_id=other, consulting_removed=(people["consultant"],)),
    )
    assert store.encounter(encounter).consulting == frozenset()
    assert on_team(store, patient, other)
    clock.advance(hours=25)
    assert not on_team(store, patient, people["attending"])
    assert not on_team(store, patient, people["consultant"])
    assert on_team(store, patient, other)
    with pytest.raises(ClinicalRuleViolation, match="not consulting"):
        store.update_encounter(
            ctx(ADMIN), UpdateEncounter(encounter, consulting_removed=(people["consultant"],))
        )


def test_the_grace_period_is_the_store_setting(
    store: ClinicalStore, clock: FakeClock, people: dict[str, UUID], patient: UUID
) -> None:
    store.care_team_grace = timedelta(hours=1)
    encounter = store.start_encounter(
        ctx(ADMIN), StartEncounter(patient, "outpatient", "Clinic A", people["attending"])
    ).id
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter, "home"))
    clock.advance(minutes=59)
    assert on_team(store, patient, people["attending"])
    clock.advance(minutes=2)
    assert not on_team(store, patient, people["attending"])


def test_a_leaving_member_cannot_change_the_team_after_leaving(
    store: ClinicalStore, clock: FakeClock, people: dict[str, UUID], patient: UUID
) -> None:
    encounter = store.start_encounter(
        ctx(ADMIN), StartEncounter(patient, "inpatient", "Ward 3", people["attending"])
    ).id
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter, "home"))
    clock.advance(hours=25)
    doctor = Actor(user_id=people["attending"], role="physician")
    with pytest.raises(NotPermitted):
        store.change_care_team(
            ctx(doctor), ChangeCareTeam(patient, people["manual_nurse"], "added")
        )


def test_ward_staff_are_data_with_the_care_team_rules(
    store: ClinicalStore, people: dict[str, UUID]
) -> None:
    staff(store, "ICU", people["icu_nurse"])
    assert store.ward_staff("icu ") == frozenset({people["icu_nurse"]})  # one ward by name
    with pytest.raises(ClinicalRuleViolation, match="already assigned"):
        staff(store, "ICU", people["icu_nurse"])
    clerk = account(store, "clerk", "billing")
    with pytest.raises(ClinicalRuleViolation, match="cannot be on a ward"):
        staff(store, "ICU", clerk)
    store.change_ward_staff(ctx(ADMIN), ChangeWardStaff("ICU", people["icu_nurse"], "unassigned"))
    assert store.ward_staff("ICU") == frozenset()
    with pytest.raises(ClinicalRuleViolation, match="not assigned"):
        store.change_ward_staff(
            ctx(ADMIN), ChangeWardStaff("ICU", people["icu_nurse"], "unassigned")
        )


def test_an_administrator_cannot_staff_a_ward_with_an_account_they_created(
    store: ClinicalStore,
) -> None:
    made = store.create_user(ctx(ADMIN), CreateUser("nurse.new", "New Nurse", "nurse")).id
    with pytest.raises(NotPermitted, match="account you created"):
        store.change_ward_staff(ctx(ADMIN), ChangeWardStaff("ICU", made, "assigned"))


def test_a_deactivated_ward_nurse_does_not_join(
    store: ClinicalStore, people: dict[str, UUID], patient: UUID
) -> None:
    staff(store, "ICU", people["icu_nurse"])
    store.deactivate_user(
        ctx(ADMIN, reason="left the hospital"), DeactivateUser(people["icu_nurse"])
    )
    store.start_encounter(
        ctx(ADMIN), StartEncounter(patient, "inpatient", "ICU", people["attending"])
    )
    team = store.care_team(patient)
    assert team is not None and people["icu_nurse"] not in team.members
