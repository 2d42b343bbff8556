"""Encounters on the write side: one open per patient, transfers, updates, discharge, and
the attending physician following onto the care team."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.commands.encounters import (
    EndEncounter,
    StartEncounter,
    TransferEncounter,
    UpdateEncounter,
)
from events.commands.patients import RegisterPatient
from events.domain.aggregates import access, encounters
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import ClinicalRuleViolation, ConflictError, NotFound
from events.domain.payloads import encounters as enc
from events.store.history import EVOLVE_BY_TYPE
from tests.unit.conftest import ADMIN, FakeClock, account, ctx


def registered(store: ClinicalStore, mrn: str = "MRN-2001") -> UUID:
    cmd = RegisterPatient(mrn, "Okafor", ("Ada",), date(1961, 4, 2), "female")
    return store.register_patient(ctx(ADMIN), cmd).id


def team(store: ClinicalStore, patient_id: UUID) -> frozenset[UUID]:
    state = store.load(access.care_team_id(patient_id), access.evolve_care_team)
    return state.members if state is not None else frozenset()


@pytest.fixture
def doctor(store: ClinicalStore) -> UUID:
    return account(store, "dr.house", "physician")


def admitted(store: ClinicalStore, patient_id: UUID, attending: UUID, ward: str = "Cardio") -> UUID:
    cmd = StartEncounter(patient_id, "inpatient", ward, attending, room="12", bed="B")
    return store.start_encounter(ctx(ADMIN), cmd).id


def test_starting_an_encounter_stores_it_and_puts_the_attending_on_the_care_team(
    store: ClinicalStore, doctor: UUID
) -> None:
    # given a registered patient with nobody on the care team
    patient = registered(store)
    # when an encounter starts
    encounter_id = admitted(store, patient, doctor)
    # then the encounter is a stream of its own, of the patient, open, at the location
    [started] = list(store.events_of(encounter_id))
    assert started.event_type == "encounter.started"
    assert started.patient_id == patient
    state = store.encounter(encounter_id)
    assert state.open and state.location == encounters.Place("Cardio", "12", "B")
    assert state.attending_id == doctor
    # and the attending joined the care team, added by the system for the encounter
    assert doctor in team(store, patient)
    [joined] = list(store.events_of(access.care_team_id(patient)))
    assert joined.actor == SYSTEM_ACTOR
    assert joined.reason == f"encounter {encounter_id}"


def test_an_attending_already_on_the_team_is_not_added_again(
    store: ClinicalStore, doctor: UUID
) -> None:
    # given the physician on the team already, put there by an administrator
    patient = registered(store)
    store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, doctor, "added"))
    # when an encounter under them starts and ends
    first = admitted(store, patient, doctor)
    store.end_encounter(ctx(ADMIN), EndEncounter(first, "home"))
    # then the team changed once, by hand: the encounter neither added nor removed them
    assert len(list(store.events_of(access.care_team_id(patient)))) == 1
    assert doctor in team(store, patient)


def test_a_second_open_encounter_is_refused_and_one_may_start_after_discharge(
    store: ClinicalStore, doctor: UUID
) -> None:
    patient = registered(store)
    first = admitted(store, patient, doctor)
    with pytest.raises(ClinicalRuleViolation, match="already has an open encounter"):
        admitted(store, patient, doctor, ward="ICU")
    store.end_encounter(ctx(ADMIN), EndEncounter(first, "transfer"))
    second = admitted(store, patient, doctor, ward="ICU")
    assert second != first
    count, latest = store.latest_encounter(patient)
    assert count == 2 and latest is not None and latest.id == second and latest.open


def test_a_racing_start_for_the_same_patient_is_a_conflict(
    store: ClinicalStore, doctor: UUID
) -> None:
    # given two starts decided against the same state (the second saves into the same slot)
    patient = registered(store)
    slot = store.encounter_slot(patient, 1)
    admitted(store, patient, doctor)
    original = store.latest_encounter
    store.latest_encounter = lambda _: (0, None)  # type: ignore[method-assign]
    try:
        with pytest.raises(ConflictError):
            admitted(store, patient, doctor)
    finally:
        store.latest_encounter = original  # type: ignore[method-assign]
    assert len(list(store.events_of(slot))) == 1


def test_transfer_update_and_end_change_the_encounter(
    store: ClinicalStore, clock: FakeClock, doctor: UUID
) -> None:
    patient = registered(store)
    other = account(store, "dr.grey", "physician")
    encounter_id = admitted(store, patient, doctor)
    clock.advance(hours=2)
    store.transfer_encounter(ctx(ADMIN), TransferEncounter(encounter_id, "ICU", bed="4"))
    store.update_encounter(ctx(ADMIN), UpdateEncounter(encounter_id, attending_id=other))
    clock.advance(days=3)
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter_id, "home"))
    state = store.encounter(encounter_id)
    assert state.location == encounters.Place("ICU", None, "4")
    assert state.attending_id == other
    assert not state.open and state.disposition == "home"
    assert state.ended_at is not None and state.ended_at - state.started_at == timedelta(
        days=3, hours=2
    )
    # the new attending joined; ending the encounter removed nobody
    assert team(store, patient) == {doctor, other}


def test_a_closed_encounter_cannot_be_transferred_updated_or_ended(
    store: ClinicalStore, doctor: UUID
) -> None:
    patient = registered(store)
    encounter_id = admitted(store, patient, doctor)
    store.end_encounter(ctx(ADMIN), EndEncounter(encounter_id, "home"))
    with pytest.raises(ClinicalRuleViolation, match="has ended"):
        store.transfer_encounter(ctx(ADMIN), TransferEncounter(encounter_id, "ICU"))
    with pytest.raises(ClinicalRuleViolation, match="has ended"):
        store.update_encounter(
            ctx(ADMIN), UpdateEncounter(encounter_id, encounter_class="emergency")
        )
    with pytest.raises(ClinicalRuleViolation, match="has ended"):
        store.end_encounter(ctx(ADMIN), EndEncounter(encounter_id, "home"))


def test_updates_and_transfers_must_change_something(store: ClinicalStore, doctor: UUID) -> None:
    patient = registered(store)
    encounter_id = admitted(store, patient, doctor)
    with pytest.raises(ClinicalRuleViolation, match="already at this location"):
        store.transfer_encounter(ctx(ADMIN), TransferEncounter(encounter_id, "Cardio", "12", "B"))
    with pytest.raises(ClinicalRuleViolation, match="must change"):
        store.update_encounter(ctx(ADMIN), UpdateEncounter(encounter_id, attending_id=doctor))
    with pytest.raises(ClinicalRuleViolation, match="must change"):
        store.update_encounter(ctx(ADMIN), UpdateEncounter(encounter_id))


def test_the_attending_must_be_an_active_physician(store: ClinicalStore) -> None:
    patient = registered(store)
    nurse = account(store, "nurse.joy", "nurse")
    with pytest.raises(ClinicalRuleViolation, match="must be a physician"):
        admitted(store, patient, nurse)
    with pytest.raises(ClinicalRuleViolation, match="no user"):
        admitted(store, patient, uuid4())
    assert store.latest_encounter(patient) == (0, None)
    assert team(store, patient) == frozenset()


def test_the_patient_and_the_encounter_must_exist(store: ClinicalStore, doctor: UUID) -> None:
    with pytest.raises(NotFound):
        admitted(store, uuid4(), doctor)
    with pytest.raises(NotFound):
        store.end_encounter(ctx(ADMIN), EndEncounter(uuid4(), "home"))


def test_text_and_choices_are_validated_like_every_payload(
    store: ClinicalStore, doctor: UUID
) -> None:
    patient = registered(store)
    with pytest.raises(ValidationError):
        admitted(store, patient, doctor, ward="")
    with pytest.raises(ValidationError):
        admitted(store, patient, doctor, ward="x" * 201)
    with pytest.raises(ValidationError):
        admitted(store, patient, doctor, ward="Cardio\x00")
    with pytest.raises(ValidationError):
        store.start_encounter(ctx(ADMIN), StartEncounter(patient, "spa", "Cardio", doctor))
    encounter_id = admitted(store, patient, doctor)
    with pytest.raises(ValidationError):
        store.end_encounter(ctx(ADMIN), EndEncounter(encounter_id, "vanished"))
    with pytest.raises(ValidationError):
        enc.EncounterUpdated()


def test_the_guard_sees_the_patient_of_an_encounter(store: ClinicalStore, doctor: UUID) -> None:
    patient = registered(store)
    encounter_id = admitted(store, patient, doctor)
    seen: list[UUID] = []
    store.transfer_encounter(ctx(ADMIN, guard=seen.append), TransferEncounter(encounter_id, "ICU"))
    store.start_encounter(
        ctx(ADMIN, guard=seen.append),
        StartEncounter(registered(store, "MRN-2002"), "outpatient", "OPD", doctor),
    )
    assert seen[0] == patient and len(seen) == 2


def test_history_knows_every_encounter_event() -> None:
    for event_type in ("started", "transferred", "updated", "ended"):
        assert EVOLVE_BY_TYPE[f"encounter.{event_type}"] is encounters.evolve
