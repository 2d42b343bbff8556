"""The patient aggregate: registration, demographics, allergies, and merges.

A merge is on both records' streams: the merged record learns whom it now points to
(``merged_into``), the survivor which records it absorbed (``merged_ids``). The decisions
about merging live in ``events.domain.aggregates.merges``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.envelope import ClinicalEvent
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    DuplicateMRN,
    NotFound,
    PatientErasedError,
)
from events.domain.payloads import merges as mp
from events.domain.payloads import patients as p

AllergyStatus = Literal["active", "inactive", "refuted"]


@dataclass(frozen=True)
class Allergy:
    """A recorded allergy; inactive and refuted ones stay in the list, marked by ``status``.
    ``criticality`` (FHIR: low, high, unable-to-assess) is None when it was not stated."""

    allergy_id: UUID
    substance: str
    substance_code: str | None
    reaction: str
    severity: str
    status: AllergyStatus = "active"
    criticality: str | None = None
    # The merged record that holds it, in a survivor's view of its merged records (None:
    # this record's own, as its stream records it).
    held_by: UUID | None = None

    @property
    def refuted(self) -> bool:
        return self.status == "refuted"


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
    # "No known drug allergies" was recorded and no allergy recorded or reactivated since.
    no_known_allergies: bool = False
    # The survivor this record was merged into (None: it stands on its own) ...
    merged_into: UUID | None = None
    # ... and the records merged into this one, while those merges are in force.
    merged_ids: tuple[UUID, ...] = ()

    @property
    def active_allergies(self) -> tuple[Allergy, ...]:
        """The allergies that screen prescriptions: neither inactive nor refuted."""
        return tuple(a for a in self.allergies if a.status == "active")


def _with_status(state: Patient, allergy_id: UUID, status: AllergyStatus) -> Patient:
    allergies = tuple(
        replace(a, status=status) if a.allergy_id == allergy_id else a for a in state.allergies
    )
    return replace(state, allergies=allergies)


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
            criticality=payload.criticality,
        )
        return replace(state, allergies=(*state.allergies, allergy), no_known_allergies=False)
    if isinstance(payload, p.AllergyRefuted):
        return _with_status(state, payload.allergy_id, "refuted")
    if isinstance(payload, p.AllergyStatusChanged):
        changed = _with_status(state, payload.allergy_id, payload.status)
        if payload.status == "active":
            return replace(changed, no_known_allergies=False)
        return changed
    if isinstance(payload, p.NoKnownAllergies):
        return replace(state, no_known_allergies=True)
    if isinstance(payload, p.PatientErased):
        return replace(state, erased=True)
    if isinstance(payload, mp.PatientMerged | mp.PatientUnmerged):
        return _merge_side(state, payload)
    raise ValueError(f"patient stream cannot apply {event.event_type}")


def _merge_side(state: Patient, payload: mp.PatientMerged | mp.PatientUnmerged) -> Patient:
    """Either side of a merge or an unmerge: the copy on this record's stream."""
    merged = isinstance(payload, mp.PatientMerged)
    if state.id == payload.merged_id:
        return replace(state, merged_into=payload.survivor_id if merged else None)
    if state.id != payload.survivor_id:
        raise ValueError(f"{payload.event_type} names neither record of this stream")
    others = tuple(i for i in state.merged_ids if i != payload.merged_id)
    return replace(state, merged_ids=(*others, payload.merged_id) if merged else others)


class PatientMergedError(ConflictError):
    """The record was merged into another: new writes go to the survivor (409)."""

    def __init__(self, patient_id: UUID, survivor_id: UUID) -> None:
        super().__init__(
            f"patient {patient_id} was merged into {survivor_id}: send this to {survivor_id} "
            "(or unmerge the records first)"
        )
        self.patient_id = patient_id
        self.survivor_id = survivor_id


def require_patient(
    state: Patient | None, patient_id: UUID, *, allow_merged: bool = False
) -> Patient:
    """The patient, or the error a command about an unknown, erased or merged patient gets
    (a merged record takes no new writes: they belong on the survivor). ``allow_merged``:
    a correction of what the merged record already holds (an allergy's status, say)."""
    if state is None:
        raise NotFound("patient", patient_id)
    if state.erased:
        raise PatientErasedError(patient_id)
    if state.merged_into is not None and not allow_merged:
        raise PatientMergedError(patient_id, state.merged_into)
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


def _refuse_duplicate(state: Patient, substance: str, code: str | None, skip: UUID | None) -> None:
    for known in state.active_allergies:
        same_code = code and known.substance_code == code
        if known.allergy_id != skip and (same_code or known.substance.lower() == substance.lower()):
            raise ClinicalRuleViolation(
                f"an active allergy to this substance is already recorded ({known.allergy_id})",
                field="substance",
            )


def record_allergy(state: Patient, allergy: p.AllergyRecorded) -> p.AllergyRecorded:
    """A new allergy (it ends a "no known drug allergies" statement); not a second active one."""
    _refuse_duplicate(state, allergy.substance, allergy.substance_code, None)
    return allergy


def record_no_known_allergies(state: Patient) -> p.NoKnownAllergies:
    """ "No known drug allergies", refused while an allergy is active (inactivate or refute it
    first). Stated again later (a new admission), it is recorded again with its time."""
    if state.active_allergies:
        raise ClinicalRuleViolation(
            f"{len(state.active_allergies)} active allergies are recorded: inactivate or refute "
            "them before recording no known allergies",
            field="allergies",
        )
    return p.NoKnownAllergies()


def _own_allergy(state: Patient, allergy_id: UUID) -> Allergy:
    """The allergy as this record holds it: one of a merged record is corrected there."""
    match = [a for a in state.allergies if a.allergy_id == allergy_id]
    if not match:
        raise NotFound("allergy", allergy_id)
    if match[0].held_by is not None:
        raise ClinicalRuleViolation(
            f"the allergy is recorded on the merged record {match[0].held_by}: correct it there",
            field="allergy_id",
        )
    return match[0]


def change_allergy_status(
    state: Patient, allergy_id: UUID, status: Literal["active", "inactive"], reason: str | None
) -> p.AllergyStatusChanged:
    """Inactivate an allergy or make an inactive one active again, with a reason. A refuted
    allergy stays refuted (record it again if it turns out to exist)."""
    require_reason(reason, f"make an allergy {status}")
    match = [_own_allergy(state, allergy_id)]
    if match[0].status == "refuted":
        raise ClinicalRuleViolation(
            "the allergy is refuted: record it again if it exists", field="status"
        )
    if match[0].status == status:
        raise ClinicalRuleViolation(f"the allergy is already {status}", field="status")
    if status == "active":
        _refuse_duplicate(state, match[0].substance, match[0].substance_code, allergy_id)
    return p.AllergyStatusChanged(allergy_id=allergy_id, status=status)


def _check_legal_basis(legal_basis: str, limit: int) -> None:
    """Refused up front (a domain error, 422), never by the payload after a decision."""
    if not legal_basis.strip():
        raise ClinicalRuleViolation("a legal basis is required", field="legal_basis")
    if len(legal_basis.strip()) > limit:
        raise ClinicalRuleViolation(
            f"legal_basis is longer than {limit} characters", field="legal_basis"
        )


def erase(legal_basis: str, reason: str | None, state: Patient | None = None) -> p.PatientErased:
    """Erasure is recorded only with a reason (and a legal basis); an approved request's
    basis carries the request's id, hence its longer limit. Given the record's ``state``,
    a survivor of merges in force is refused: unmerge them first, or they would point to a
    record nobody can read (a merged record is refused already by ``require_patient``)."""
    require_reason(reason, "erase a patient")
    if state is not None and state.merged_ids:
        raise ClinicalRuleViolation(
            f"{len(state.merged_ids)} records are merged into this patient: unmerge them "
            "before erasing it",
            field="patient_id",
        )
    _check_legal_basis(legal_basis, p.APPROVED_BASIS_LIMIT)
    return p.PatientErased(legal_basis=legal_basis)


def request_erasure(request_id: UUID, legal_basis: str, reason: str | None) -> p.ErasureRequested:
    """An erasure request, with a legal basis the approval can always record."""
    require_reason(reason, "erase a patient")
    _check_legal_basis(legal_basis, p.LEGAL_BASIS_LIMIT)
    return p.ErasureRequested(request_id=request_id, legal_basis=legal_basis)


def refute_allergy(state: Patient, allergy_id: UUID, reason: str | None) -> p.AllergyRefuted:
    require_reason(reason, "refute an allergy")
    match = [_own_allergy(state, allergy_id)]
    if match[0].refuted:
        raise ClinicalRuleViolation("the allergy is already refuted", field="allergy_id")
    return p.AllergyRefuted(allergy_id=allergy_id)
