"""Payloads of the patients area: registration, demographics, allergies, erasure."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import StringConstraints, model_validator

from events.domain.payloads.base import NonEmpty, Payload

Sex = Literal["female", "male", "other", "unknown"]
Severity = Literal["mild", "moderate", "severe"]
Mrn = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")
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


class AllergyRefuted(Payload):
    """A recorded allergy was found not to exist (the envelope carries the reason)."""

    event_type = "allergy.refuted"

    allergy_id: UUID


class PatientErased(Payload):
    """The patient's data key was destroyed; their earlier events can no longer be read."""

    event_type = "patient.erased"

    legal_basis: NonEmpty


class ErasureRequested(Payload):
    """Someone asked for the patient's erasure; a second person must approve it."""

    event_type = "erasure.requested"

    request_id: UUID
    legal_basis: NonEmpty


class CareTeamChanged(Payload):
    """A user joined or left the patient's care team; a removal says why (the envelope's
    reason), ``role`` is the member's role when the change was made."""

    event_type = "care_team.changed"

    user_id: UUID
    change: Literal["added", "removed"]
    role: str | None = None
