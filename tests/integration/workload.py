"""A clinical workload through the store's commands, touching every projected event type.

Its people and values come from ``services.synthetic``, seeded: the same seed gives the same
workload.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from events.application import ClinicalStore
from events.commands.access import (
    ChangeCareTeam,
    GrantBreakGlass,
    RecordAuditRead,
    RecordChartView,
    RecordDenial,
)
from events.commands.base import CommandContext
from events.commands.encounters import (
    EndEncounter,
    StartEncounter,
    TransferEncounter,
    UpdateEncounter,
)
from events.commands.medications import (
    ChangeMedication,
    DiscontinueMedication,
    PharmacyDecision,
    RecordAdministration,
)
from events.commands.merges import MergePatients, UnmergePatients
from events.commands.orders import AmendResult, CancelOrder, CollectSpecimen
from events.commands.patients import ErasePatient, RefuteAllergy
from events.commands.users import CreateUser
from events.domain.aggregates import medications, users
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.domain.errors import DomainError
from services.synthetic import (
    AMOXICILLIN,
    LISINOPRIL,
    METFORMIN,
    PENICILLIN,
    POTASSIUM,
    Synthetic,
)

PHYSICIAN = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a1"), role="physician")
NURSE = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a2"), role="nurse")
LAB = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a3"), role="lab_tech")
PHARMACIST = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a4"), role="pharmacist")
COMPLIANCE = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a5"), role="compliance")
URGENT_FIRST_DOSE = "first dose before verification (urgent)"


def as_(actor: Actor, reason: str | None = None) -> CommandContext:
    return CommandContext(actor=actor, reason=reason)


def team_nurse(store: ClinicalStore) -> UUID:
    """The workload's nurse account: care teams take only users that exist."""
    user_id = store.user_id_for("workload.nurse")
    if store.load(user_id, users.evolve) is None:
        store.create_user(
            as_(SYSTEM_ACTOR), CreateUser("workload.nurse", "Workload Nurse", "nurse")
        )
    return user_id


def team_physician(store: ClinicalStore) -> UUID:
    """The workload's attending physician account (an encounter's attending must exist)."""
    user_id = store.user_id_for("workload.physician")
    if store.load(user_id, users.evolve) is None:
        store.create_user(
            as_(SYSTEM_ACTOR), CreateUser("workload.physician", "Workload Physician", "physician")
        )
    return user_id


def _encounter(store: ClinicalStore, pid: UUID, i: int) -> None:
    """Every patient is admitted; even ones are moved and discharged, every third changes
    class (odd ones stay admitted: the chart's open encounter)."""
    start = StartEncounter(pid, "inpatient", f"Ward {i % 4}", team_physician(store), room=str(i))
    encounter = store.start_encounter(as_(NURSE), start).id
    if i % 3 == 0:
        store.update_encounter(as_(NURSE), UpdateEncounter(encounter, encounter_class="emergency"))
    if i % 2 == 0:
        store.transfer_encounter(as_(NURSE), TransferEncounter(encounter, "ICU", bed="2"))
        store.end_encounter(as_(NURSE), EndEncounter(encounter, "home"))


# The refusal path: amoxicillin for a patient with an active penicillin allergy.
STAY_DRUGS = (AMOXICILLIN, LISINOPRIL, METFORMIN)


def run_workload(store: ClinicalStore, patients: int, prefix: str, seed: int = 7) -> list[UUID]:
    """Register ``patients`` patients and give each a realistic stay; the patient ids."""
    people = Synthetic(seed, mrn_prefix=prefix)
    ids = []
    for i in range(patients):
        registration = people.registration(i)
        pid = store.register_patient(as_(PHYSICIAN), registration).id
        ids.append(pid)
        _stay(store, people, pid, i, registration.family_name)
    if patients >= 20:
        _merges(store, ids)
    for pid in ids[:3]:
        store.forget(as_(PHYSICIAN, "erasure request"), ErasePatient(pid, "GDPR art. 17"))
    return ids


def _stay(store: ClinicalStore, people: Synthetic, pid: UUID, i: int, family_name: str) -> None:
    _encounter(store, pid, i)
    if i % 5 == 0:
        store.update_demographics(as_(NURSE), people.renamed(pid, family_name))
    if i % 3 == 0:
        allergy = store.record_allergy(as_(NURSE), people.allergy(pid, PENICILLIN)).id
        if i % 6 == 0:
            store.refute_allergy(as_(PHYSICIAN, "tolerated challenge"), RefuteAllergy(pid, allergy))
    for _ in range(2):
        store.record_vitals(as_(NURSE), people.vitals(pid))
    order = store.place_order(as_(PHYSICIAN), people.order(pid, POTASSIUM)).id
    if i % 7 == 0:
        store.cancel_order(as_(PHYSICIAN, "duplicate"), CancelOrder(order))
    else:
        store.collect_specimen(as_(NURSE), CollectSpecimen(order))
        for _ in range(2):
            result = store.receive_results(as_(LAB), people.results(order, POTASSIUM))
        if i % 4 == 0:
            result_id = UUID(result.detail["results"][0]["result_id"])
            store.amend_result(
                as_(LAB, "hemolysed"), AmendResult(order, result_id, people.result(POTASSIUM))
            )
    drug = STAY_DRUGS[i % len(STAY_DRUGS)]
    try:
        medication = store.prescribe(as_(PHYSICIAN), drug.prescribe(pid)).id
    except DomainError:  # amoxicillin for a penicillin-allergic patient: refused
        drug = LISINOPRIL
        medication = store.prescribe(as_(PHYSICIAN), drug.prescribe(pid)).id
    if i % 2 == 0:
        store.change_medication(
            as_(PHYSICIAN, "titration"), ChangeMedication(medication, frequency="bid")
        )
    # The first dose is given before pharmacy's decision below: an urgent start, overridden.
    first_dose = RecordAdministration(medication, dose=drug.dose, override_reason=URGENT_FIRST_DOSE)
    store.record_administration(as_(NURSE), first_dose)
    if i % 3 == 1:
        store.pharmacy_decision(
            as_(PHARMACIST),
            PharmacyDecision(medication, UUID(int=i + 1), _version(store, medication), True),
        )
    elif i % 9 == 2:
        store.pharmacy_decision(
            as_(PHARMACIST, "interaction"),
            PharmacyDecision(medication, UUID(int=i + 1), _version(store, medication), False),
        )
    if i % 4 == 3:
        store.discontinue_medication(
            as_(PHYSICIAN, "course complete"), DiscontinueMedication(medication)
        )
    store.change_care_team(as_(SYSTEM_ACTOR), ChangeCareTeam(pid, team_nurse(store), "added"))
    store.record_chart_view(as_(NURSE), RecordChartView(pid, "chart", "treatment", False))
    if i % 10 == 0:
        store.grant_break_glass(
            as_(PHYSICIAN, "unconscious patient in ED"), GrantBreakGlass(pid, timedelta(hours=4))
        )
    if i % 10 == 5:  # a refused read, and compliance looking at this patient's access log
        chart = "/v1/patients/{patient_id}/chart"
        denied = RecordDenial("GET", chart, 403, "forbidden", "not on the care team", pid, None)
        store.record_denial(PHARMACIST, denied)
        store.record_audit_read(as_(COMPLIANCE), RecordAuditRead("access_log", pid, None, 2))


def _merges(store: ClinicalStore, ids: list[UUID]) -> None:
    """A merge in force, one undone, and a chain (a survivor merged in turn)."""
    duplicate = as_(PHYSICIAN, "duplicate registration")
    store.merge_patients(duplicate, MergePatients(ids[11], ids[10]))
    store.merge_patients(duplicate, MergePatients(ids[13], ids[12]))
    store.unmerge_patients(as_(PHYSICIAN, "different people"), UnmergePatients(ids[13], ids[12]))
    store.merge_patients(duplicate, MergePatients(ids[15], ids[14]))
    store.merge_patients(duplicate, MergePatients(ids[16], ids[15]))


def _version(store: ClinicalStore, medication: UUID) -> int:
    order = store.load(medication, medications.evolve)
    assert order is not None
    return order.order_change_version
