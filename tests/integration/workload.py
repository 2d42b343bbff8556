"""A clinical workload through the store's commands, touching every projected event type."""

from __future__ import annotations

import random
from datetime import date, timedelta
from uuid import UUID

from events.domain.aggregates import medications
from events.domain.aggregates.orders import AnalyteInput
from events.domain.envelope import Actor
from events.domain.errors import DomainError
from events.domain.payloads.patients import DemographicsUpdated, PatientRegistered
from events.store.application import ClinicalStore, CommandContext

PHYSICIAN = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a1"), role="physician")
NURSE = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a2"), role="nurse")
LAB = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a3"), role="lab_tech")
PHARMACIST = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000a4"), role="pharmacist")


def as_(actor: Actor, reason: str | None = None) -> CommandContext:
    return CommandContext(actor=actor, reason=reason)


DRUGS = [
    {
        "drug_code": "723",
        "drug_name": "amoxicillin",
        "dose": 500,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "tid",
    },
    {
        "drug_code": "29046",
        "drug_name": "lisinopril",
        "dose": 10,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "daily",
    },
    {
        "drug_code": "6809",
        "drug_name": "metformin",
        "dose": 500,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "bid",
    },
]


def run_workload(store: ClinicalStore, patients: int, prefix: str, seed: int = 7) -> list[UUID]:
    """Register ``patients`` patients and give each a realistic stay; the patient ids."""
    rng = random.Random(seed)
    ids = []
    for i in range(patients):
        pid = store.register_patient(
            as_(PHYSICIAN),
            PatientRegistered(
                mrn=f"{prefix}{i:06d}",
                family_name=f"Family{i}",
                given_names=("Pat", f"N{i}"),
                birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(30000)),
                sex=rng.choice(["female", "male", "other", "unknown"]),
            ),
        ).id
        ids.append(pid)
        _stay(store, rng, pid, i)
    for pid in ids[:3]:
        store.forget(as_(PHYSICIAN, "erasure request"), pid, "GDPR art. 17")
    return ids


def _stay(store: ClinicalStore, rng: random.Random, pid: UUID, i: int) -> None:
    if i % 5 == 0:
        store.update_demographics(as_(NURSE), pid, DemographicsUpdated(family_name=f"Renamed{i}"))
    if i % 3 == 0:
        allergy = store.record_allergy(as_(NURSE), pid, "penicillin", "hives", "moderate").id
        if i % 6 == 0:
            store.refute_allergy(as_(PHYSICIAN, "tolerated challenge"), pid, allergy)
    for _ in range(2):
        store.record_vitals(
            as_(NURSE),
            pid,
            {
                "heart_rate": rng.randrange(50, 130),
                "systolic_bp": rng.randrange(95, 170),
                "diastolic_bp": rng.randrange(55, 90),
                "spo2": rng.randrange(90, 100),
            },
        )
    order = store.place_order(as_(PHYSICIAN), pid, "2823-3", "Potassium", "routine").id
    if i % 7 == 0:
        store.cancel_order(as_(PHYSICIAN, "duplicate"), order)
    else:
        store.collect_specimen(as_(NURSE), order)
        for value in (rng.uniform(3.0, 5.8), rng.uniform(2.5, 6.8)):
            result = store.receive_results(
                as_(LAB),
                order,
                [AnalyteInput("2823-3", "Potassium", round(value, 1), "mmol/L", 3.5, 5.1)],
            )
        if i % 4 == 0:
            result_id = UUID(result.detail["results"][0]["result_id"])
            store.amend_result(
                as_(LAB, "hemolysed"),
                order,
                result_id,
                AnalyteInput("2823-3", "Potassium", 4.2, "mmol/L", 3.5, 5.1),
            )
    drug = DRUGS[i % len(DRUGS)]
    try:
        medication = store.prescribe(as_(PHYSICIAN), pid, drug).id
    except DomainError:  # amoxicillin for a penicillin-allergic patient: refused
        medication = store.prescribe(as_(PHYSICIAN), pid, DRUGS[1]).id
    if i % 2 == 0:
        store.change_medication(as_(PHYSICIAN, "titration"), medication, {"frequency": "bid"})
    store.record_administration(as_(NURSE), medication, {"dose": 10})
    if i % 3 == 1:
        store.pharmacy_decision(
            as_(PHARMACIST), medication, UUID(int=i + 1), _version(store, medication), True
        )
    elif i % 9 == 2:
        store.pharmacy_decision(
            as_(PHARMACIST, "interaction"),
            medication,
            UUID(int=i + 1),
            _version(store, medication),
            False,
        )
    if i % 4 == 3:
        store.discontinue_medication(as_(PHYSICIAN, "course complete"), medication)
    store.change_care_team(as_(PHYSICIAN), pid, NURSE.user_id, "added")
    store.record_chart_view(as_(NURSE), pid, "chart", "treatment", False)
    if i % 10 == 0:
        store.grant_break_glass(
            as_(PHYSICIAN, "unconscious patient in ED"), pid, timedelta(hours=4)
        )


def _version(store: ClinicalStore, medication: UUID) -> int:
    order = store.load(medication, medications.evolve)
    assert order is not None
    return order.order_change_version
