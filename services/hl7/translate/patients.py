"""The people a message names: the patient (PID-3, PID-5, PID-7, PID-8) and clinicians.

A patient is matched by an identifier of PID-3 (or MRG-1) whose assigning authority
(component 4) is one of the backbone's MRN authorities, preferring the repetition of type
``MR`` (component 5); the identifier is the MRN. A message for an unknown patient is
refused, never guessed; one for a record merged into another goes to the survivor.
Clinicians (attending PV1-7, ordering provider ORC-12 / OBR-16, prescriber ORC-12) are
matched by the XCN's ID number against usernames, ignoring case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from uuid import UUID

from events.application import ClinicalStore
from events.commands.patients import RegisterPatient, UpdateDemographics
from events.domain.aggregates.patients import PatientMergedError
from events.domain.errors import NotFound, PatientErasedError
from services.hl7.contract import Refusal
from services.hl7.translate.fields import Segment, calendar_date

T = TypeVar("T")

# HL7 table 0001 (administrative sex) and the backbone's sexes.
SEXES = {
    "F": "female",
    "M": "male",
    "O": "other",
    "A": "other",
    "X": "other",
    "U": "unknown",
    "N": "unknown",
}
# Where a refusal of a patient's command points for each field the domain may name.
PID_FIELDS = {
    "mrn": "PID-3",
    "family_name": "PID-5",
    "given_names": "PID-5",
    "birth_date": "PID-7",
    "sex": "PID-8",
}


@dataclass(frozen=True)
class PatientRef:
    """A patient as a message identifies them: an MRN under its assigning authority."""

    mrn: str
    authority: str
    location: str

    @property
    def key(self) -> str:
        return f"{self.authority}|{self.mrn}"


@dataclass(frozen=True)
class Demographics:
    """What PID says about a patient; None where it says nothing."""

    family_name: str | None
    given_names: tuple[str, ...] | None
    birth_date: date | None
    sex: str | None


def identifier(segment: Segment, field: int, authorities: frozenset[str]) -> PatientRef:
    """The MRN of a CX field (PID-3, MRG-1) under an accepted authority (any if none set)."""
    location = segment.at(field)
    count = segment.repetitions(field)
    if count == 0:
        raise Refusal("AR", location, f"{location} (the patient identifier) is required")
    found: list[tuple[bool, int, str, str]] = []
    for rep in range(1, count + 1):
        mrn = segment.get(field, 1, rep)
        namespace, universal = segment.get(field, 4, rep), segment.get(field, 4, rep, sub=2)
        accepted = not authorities or bool({namespace.upper(), universal.upper()} & authorities)
        if mrn and accepted:
            not_mr = segment.get(field, 5, rep).upper() != "MR"
            found.append((not_mr, rep, mrn, namespace or universal))
    if not found:
        names = ", ".join(sorted(authorities))
        raise Refusal("AE", location, f"no identifier assigned by {names}: unknown patient")
    _, _, mrn, authority = min(found)
    return PatientRef(mrn, authority, location)


def _name_repetition(pid: Segment) -> int:
    """The legal name (XPN.7 ``L``) when PID-5 repeats, else the first."""
    for rep in range(1, pid.repetitions(5) + 1):
        if pid.get(5, 7, rep).upper() == "L":
            return rep
    return 1


def demographics(pid: Segment) -> Demographics:
    """The demographic fields PID carries (name, birth date, sex)."""
    rep = _name_repetition(pid)
    family = pid.get(5, 1, rep) or None
    given = tuple(n for n in (pid.get(5, 2, rep), pid.get(5, 3, rep)) if n)
    born = calendar_date(pid, 7)
    code = pid.get(8).upper()
    if code and code not in SEXES:
        raise Refusal("AE", "PID-8", f"administrative sex {code!r} is not one of F, M, O, A, U, N")
    return Demographics(family, given or None, born, SEXES.get(code))


def registration(ref: PatientRef, demo: Demographics) -> RegisterPatient:
    """The registration of a patient the backbone does not know (sex unknown if unsent)."""
    if demo.family_name is None:
        raise Refusal("AR", "PID-5", "the family name (PID-5.1) is required to register")
    if demo.given_names is None:
        raise Refusal("AR", "PID-5", "a given name (PID-5.2) is required to register")
    if demo.birth_date is None:
        raise Refusal("AR", "PID-7", "the birth date (PID-7) is required to register")
    return RegisterPatient(
        ref.mrn, demo.family_name, demo.given_names, demo.birth_date, demo.sex or "unknown"
    )


def changed_demographics(
    store: ClinicalStore, patient_id: UUID, demo: Demographics
) -> UpdateDemographics | None:
    """The fields PID changes for a known patient, or None when it changes none."""
    current = store.patient(patient_id)
    update = UpdateDemographics(
        patient_id,
        family_name=_changed(demo.family_name, current.family_name),
        given_names=_changed(demo.given_names, tuple(current.given_names)),
        birth_date=_changed(demo.birth_date, current.birth_date),
        sex=_changed(demo.sex, current.sex),
    )
    unchanged = UpdateDemographics(patient_id)
    return None if update == unchanged else update


def _changed(sent: T | None, current: T) -> T | None:
    return sent if sent is not None and sent != current else None


def patient_or_none(
    store: ClinicalStore, ref: PatientRef, *, follow_merges: bool = True
) -> UUID | None:
    """The id of the patient with this MRN, or None when the backbone knows none. A record
    merged into another answers the survivor (senders go on using the old MRN for a
    while), or itself with ``follow_merges=False`` (a merge names both records)."""
    patient_id = store.patient_id_for_mrn(ref.mrn)
    try:
        store.patient(patient_id)
    except PatientMergedError:
        return store.survivor_of(patient_id) if follow_merges else patient_id
    except (NotFound, PatientErasedError):
        return None
    return patient_id


def known_patient(store: ClinicalStore, ref: PatientRef, *, follow_merges: bool = True) -> UUID:
    """The id of the patient with this MRN; ``AE`` "unknown patient" when there is none."""
    patient_id = patient_or_none(store, ref, follow_merges=follow_merges)
    if patient_id is None:
        raise Refusal("AE", ref.location, "unknown patient", None)
    return patient_id


def clinician(
    store: ClinicalStore,
    segment: Segment,
    field: int,
    what: str,
    patient_id: UUID | None,
) -> UUID | None:
    """The user an XCN field names by its ID (component 1, a username, any case); None when
    the field is empty, ``AE`` "unknown <what>" when no user has that username."""
    if not segment.has(field):
        return None
    username = segment.get(field, 1)
    user_id = store.user_id_for(username) if username else None
    if user_id is None or store.team_member(user_id) is None:
        raise Refusal("AE", segment.at(field), f"unknown {what}", patient_id)
    return user_id
