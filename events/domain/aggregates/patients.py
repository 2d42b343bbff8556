"""The patient aggregate: registration, demographics and allergies."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, DuplicateMRN, NotFound, PatientErasedError
from events.domain.payloads import patients as p


@dataclass(frozen=True)
class Allergy:
    """A recorded allergy; refuted ones stay in the list, marked."""

    allergy_id: UUID
    substance: str
    substance_code: str | None
    reaction: str
    severity: str
    refuted: bool = False


@dataclass(frozen=True)
class Patient:
    """A patient's current demographics and allergies as the write side knows them."""

    id: UUID
    version: int
    mrn: str
    family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    sex: str
    allergies: tuple[Allergy, ...] = ()
    erased: bool = False

    @property
    def active_allergies(self) -> tuple[Allergy, ...]:
        return tuple(a for a in self.allergies if not a.refuted)


def evolve(state: Patient | None, event: ClinicalEvent) -> Patient:
    payload = event.payload
    if isinstance(payload, p.PatientRegistered):
        return Patient(
            id=event.originator_id,
            version=event.originator_version,
            mrn=payload.mrn,
            family_name=payload.family_name,
            given_names=payload.given_names,
            birth_date=payload.birth_date,
            sex=payload.sex,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before patient.registered")
    state = replace(state, version=event.originator_version)
    if isinstance(payload, p.DemographicsUpdated):
        changes = {k: v for k, v in payload.model_dump().items() if v is not None}
        return replace(state, **changes)
    if isinstance(payload, p.AllergyRecorded):
        allergy = Allergy(
            payload.allergy_id,
            payload.substance,
            payload.substance_code,
            payload.reaction,
            payload.severity,
        )
        return replace(state, allergies=(*state.allergies, allergy))
    if isinstance(payload, p.AllergyRefuted):
        allergies = tuple(
            replace(a, refuted=True) if a.allergy_id == payload.allergy_id else a
            for a in state.allergies
        )
        return replace(state, allergies=allergies)
    if isinstance(payload, p.PatientErased):
        return replace(state, erased=True)
    raise ValueError(f"patient stream cannot apply {event.event_type}")


def require_patient(state: Patient | None, patient_id: UUID) -> Patient:
    """The patient, or the error a command about an unknown or erased patient gets."""
    if state is None:
        raise NotFound("patient", patient_id)
    if state.erased:
        raise PatientErasedError(patient_id)
    return state


def _check_birth_date(birth_date: date | None, today: date) -> None:
    if birth_date is not None and birth_date > today:
        raise ClinicalRuleViolation("birth_date is in the future", field="birth_date")


def register(
    patient_id: UUID, existing: Patient | None, payload: p.PatientRegistered, today: date
) -> p.PatientRegistered:
    if existing is not None:
        raise DuplicateMRN(patient_id)
    _check_birth_date(payload.birth_date, today)
    return payload


def update_demographics(
    state: Patient, changes: p.DemographicsUpdated, today: date
) -> p.DemographicsUpdated:
    _check_birth_date(changes.birth_date, today)
    differs = {
        name: value
        for name, value in changes.model_dump().items()
        if value is not None and getattr(state, name) != value
    }
    if not differs:
        raise ClinicalRuleViolation("the update changes nothing", field="body")
    return changes


def record_allergy(state: Patient, allergy: p.AllergyRecorded) -> p.AllergyRecorded:
    for known in state.active_allergies:
        same_code = allergy.substance_code and known.substance_code == allergy.substance_code
        if same_code or known.substance.lower() == allergy.substance.lower():
            raise ClinicalRuleViolation(
                f"an active allergy to this substance is already recorded ({known.allergy_id})",
                field="substance",
            )
    return allergy


def erase(legal_basis: str, reason: str | None) -> p.PatientErased:
    """Erasure is recorded only with a reason (and a legal basis)."""
    require_reason(reason, "erase a patient")
    return p.PatientErased(legal_basis=legal_basis)


def request_erasure(request_id: UUID, legal_basis: str, reason: str | None) -> p.ErasureRequested:
    require_reason(reason, "erase a patient")
    return p.ErasureRequested(request_id=request_id, legal_basis=legal_basis)


def refute_allergy(state: Patient, allergy_id: UUID, reason: str | None) -> p.AllergyRefuted:
    require_reason(reason, "refute an allergy")
    match = [a for a in state.allergies if a.allergy_id == allergy_id]
    if not match:
        raise NotFound("allergy", allergy_id)
    if match[0].refuted:
        raise ClinicalRuleViolation("the allergy is already refuted", field="allergy_id")
    return p.AllergyRefuted(allergy_id=allergy_id)
