"""Payloads of the patients area: registration, demographics, allergies, erasure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BeforeValidator, StringConstraints, model_validator

from events.domain.payloads.base import NonEmpty, Payload
from events.domain.text import clean_text

Sex = Literal["female", "male", "other", "unknown"]
Severity = Literal["mild", "moderate", "severe"]
# FHIR R4 AllergyIntolerance.criticality: the potential for a serious reaction in future.
Criticality = Literal["low", "high", "unable-to-assess"]
MRN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"
Mrn = Annotated[str, StringConstraints(strip_whitespace=True, pattern=MRN_PATTERN)]
# The legal basis of an erasure, as a request states it (the API accepts as much), and as the
# approval records it: the request's basis plus " (requested <request id>, approved)".
LEGAL_BASIS_LIMIT = 500
APPROVED_BASIS_LIMIT = LEGAL_BASIS_LIMIT + 100


def _single_line(value: object) -> object:
    return clean_text(value) if isinstance(value, str) else value


LegalBasis = Annotated[
    str,
    BeforeValidator(_single_line),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LEGAL_BASIS_LIMIT),
]
ApprovedBasis = Annotated[
    str,
    BeforeValidator(_single_line),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=APPROVED_BASIS_LIMIT),
]


class PatientRegistered(Payload):
    """A patient was registered under a medical record number (never an SSN)."""

    event_type = "patient.registered"

    mrn: Mrn
    family_name: NonEmpty
    given_names: tuple[NonEmpty, ...]
    birth_date: date
    sex: Sex

    @model_validator(mode="after")
    def _has_given_name(self) -> PatientRegistered:
        if not self.given_names:
            raise ValueError("given_names needs at least one name")
        return self


class DemographicsUpdated(Payload):
    """Some demographic fields changed; absent fields are unchanged."""

    event_type = "patient.demographics_updated"

    family_name: NonEmpty | None = None
    given_names: tuple[NonEmpty, ...] | None = None
    birth_date: date | None = None
    sex: Sex | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> DemographicsUpdated:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a demographics update must change at least one field")
        return self


class AllergyRecorded(Payload):
    """An allergy or intolerance was recorded for the patient."""

    event_type = "allergy.recorded"

    allergy_id: UUID
    substance: NonEmpty
    substance_code: NonEmpty | None = None
    reaction: NonEmpty
    severity: Severity
    # None: not stated (events recorded before criticality was asked for carry none).
    criticality: Criticality | None = None


class AllergyRefuted(Payload):
    """A recorded allergy was found not to exist (the envelope carries the reason)."""

    event_type = "allergy.refuted"

    allergy_id: UUID


class AllergyStatusChanged(Payload):
    """A recorded allergy became inactive (resolved, outgrown) or active again (the envelope
    carries the reason). Refuting one is ``allergy.refuted``."""

    event_type = "allergy.status_changed"

    allergy_id: UUID
    status: Literal["active", "inactive"]


class NoKnownAllergies(Payload):
    """The patient was asked and has no known drug allergies ("NKDA"), as distinct from
    allergies never recorded; recording an allergy (or reactivating one) ends it."""

    event_type = "allergy.none_known"


class PatientErased(Payload):
    """The patient's data key was destroyed; their earlier events can no longer be read."""

    event_type = "patient.erased"

    legal_basis: ApprovedBasis


class ErasureRequested(Payload):
    """Someone asked for the patient's erasure; a second person must approve it."""

    event_type = "erasure.requested"

    request_id: UUID
    legal_basis: LegalBasis


class CareTeamChanged(Payload):
    """A user joined or left the patient's care team; a removal says why (the envelope's
    reason), ``role`` is the member's role when the change was made.

    ``encounter_id`` names the encounter that brought the change (its attending, a
    consultant, the ward's nurses); ``leaves_at`` is when a removal takes effect, after the
    grace period that follows a discharge or a move (absent: at once)."""

    event_type = "care_team.changed"

    user_id: UUID
    change: Literal["added", "removed"]
    role: str | None = None
    encounter_id: UUID | None = None
    leaves_at: datetime | None = None

    @model_validator(mode="after")
    def _leaving_is_a_removal(self) -> CareTeamChanged:
        if self.leaves_at is not None and self.change != "removed":
            raise ValueError("only a removal has a time it takes effect (leaves_at)")
        return self
