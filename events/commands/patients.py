"""Commands about patients and their allergies: register, update, record, refute, erase."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, command
from events.domain.aggregates import access, patients, users
from events.domain.aggregates.common import require_reason
from events.domain.errors import ConflictError, DuplicateMRN, NotPermitted, PatientErasedError
from events.domain.payloads import patients as p

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterPatient:
    """A new patient under a medical record number."""

    mrn: str
    family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    sex: str


@dataclass(frozen=True)
class UpdateDemographics:
    """Demographic fields to change; None leaves a field as it is."""

    patient_id: UUID
    family_name: str | None = None
    given_names: tuple[str, ...] | None = None
    birth_date: date | None = None
    sex: str | None = None


@dataclass(frozen=True)
class RecordAllergy:
    """An allergy or intolerance, coded where the substance is known."""

    patient_id: UUID
    substance: str
    reaction: str
    severity: str
    substance_code: str | None = None
    criticality: str | None = None


@dataclass(frozen=True)
class ChangeAllergyStatus:
    """Inactivate an allergy or reactivate an inactive one (the context carries the reason)."""

    patient_id: UUID
    allergy_id: UUID
    status: Literal["active", "inactive"]


@dataclass(frozen=True)
class RecordNoKnownAllergies:
    """The patient has no known drug allergies (asked and answered, not just unrecorded)."""

    patient_id: UUID


@dataclass(frozen=True)
class RefuteAllergy:
    """An allergy recorded in error (the context carries the reason)."""

    patient_id: UUID
    allergy_id: UUID


@dataclass(frozen=True)
class ErasePatient:
    """Erase a patient's clinical content on a legal basis (the context carries the reason)."""

    patient_id: UUID
    legal_basis: str


class PatientCommands(CommandCore):
    """The write API of patients and allergies."""

    # The store position of a patient's ``patient.erased`` (the store core provides it).
    erasure_position: Callable[[UUID], int]

    def patient_id_for_mrn(self, mrn: str) -> UUID:
        """The id of the MRN's current record (or the one its registration gets): a keyed,
        non-reversible hash of the MRN and how many of its records were erased before. An
        erased record is never answered again: the next registration gets a fresh id that
        nobody can link to the old one without the store's key."""
        natural = mrn.strip().upper().encode()
        for generation in itertools.count():
            # b"\x00" cannot occur in an MRN: generation n > 0 never meets another MRN.
            key = natural if generation == 0 else natural + b"\x00erased:%d" % generation
            candidate = self.keyed_id(key)
            if not self._erasure_recorded(candidate):
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    def _erasure_recorded(self, patient_id: UUID) -> bool:
        """Whether ``patient.erased`` is stored for the id (key destroyed yet or not)."""
        try:
            state = self.load(patient_id, patients.evolve)
        except PatientErasedError:
            return True
        return state is not None and state.erased

    @command
    def register_patient(self, ctx: CommandContext, cmd: RegisterPatient) -> CommandResult:
        patient_id = self.patient_id_for_mrn(cmd.mrn)
        wanted = p.PatientRegistered.model_validate(
            {
                "mrn": cmd.mrn,
                "family_name": cmd.family_name,
                "given_names": cmd.given_names,
                "birth_date": cmd.birth_date,
                "sex": cmd.sex,
            }
        )

        def decide(existing: patients.Patient | None, now: datetime) -> p.PatientRegistered:
            return patients.register(patient_id, existing, wanted, now.date())

        return self.change(
            ctx,
            patient_id,
            lambda: self._unerased(patient_id),
            decide,
            patient_id,
            on_conflict=DuplicateMRN(patient_id),
        )

    def _unerased(self, patient_id: UUID) -> patients.Patient | None:
        """The live record under the id; one erased meanwhile is refused naming no id."""
        try:
            existing = self.load(patient_id, patients.evolve)
        except PatientErasedError:
            existing = None
            erased = True
        else:
            erased = existing is not None and existing.erased
        if erased:
            raise ConflictError("the record under this MRN changed meanwhile; send it again")
        return existing

    @command
    def update_demographics(self, ctx: CommandContext, cmd: UpdateDemographics) -> CommandResult:
        changes = p.DemographicsUpdated.model_validate(
            {
                "family_name": cmd.family_name,
                "given_names": cmd.given_names,
                "birth_date": cmd.birth_date,
                "sex": cmd.sex,
            }
        )
        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda patient, now: patients.update_demographics(patient, changes, now.date()),
            cmd.patient_id,
        )

    @command
    def record_allergy(self, ctx: CommandContext, cmd: RecordAllergy) -> CommandResult:
        allergy_id = self.new_id()

        def decide(patient: patients.Patient, _: datetime) -> p.AllergyRecorded:
            allergy = p.AllergyRecorded.model_validate(
                {
                    "allergy_id": allergy_id,
                    "substance": cmd.substance,
                    "substance_code": cmd.substance_code,
                    "reaction": cmd.reaction,
                    "severity": cmd.severity,
                    "criticality": cmd.criticality,
                }
            )
            return patients.record_allergy(patient, allergy)

        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            decide,
            cmd.patient_id,
            result_id=allergy_id,
        )

    @command
    def change_allergy_status(self, ctx: CommandContext, cmd: ChangeAllergyStatus) -> CommandResult:
        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda patient, _: patients.change_allergy_status(
                patient, cmd.allergy_id, cmd.status, ctx.reason
            ),
            cmd.patient_id,
            result_id=cmd.allergy_id,
        )

    @command
    def record_no_known_allergies(
        self, ctx: CommandContext, cmd: RecordNoKnownAllergies
    ) -> CommandResult:
        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda patient, _: patients.record_no_known_allergies(patient),
            cmd.patient_id,
        )

    @command
    def refute_allergy(self, ctx: CommandContext, cmd: RefuteAllergy) -> CommandResult:
        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda patient, _: patients.refute_allergy(patient, cmd.allergy_id, ctx.reason),
            cmd.patient_id,
            result_id=cmd.allergy_id,
        )

    def _finish_erasure(self, patient_id: UUID) -> CommandResult | None:
        """Complete an erasure whose ``patient.erased`` is stored but whose key survived
        (the destruction failed after the commit): destroy the key now and answer as the
        erasure did. None for a patient not erased; ``PatientErasedError`` (after making
        sure the key is gone) for one erased completely before."""
        try:
            state = self.load(patient_id, patients.evolve)
        except PatientErasedError:
            self.destroy_key(patient_id)  # idempotent: whatever happened, it is gone now
            raise
        if state is None or not state.erased:
            return None
        self.destroy_key(patient_id)
        log.warning("a half-done erasure was completed: the data key is destroyed now")
        position = self.erasure_position(patient_id)
        return CommandResult(patient_id, position, {"completed": "data key destroyed"})

    @command
    def forget(self, ctx: CommandContext, cmd: ErasePatient) -> CommandResult:
        """Erase a patient: record ``patient.erased``, then destroy their data key. Sent
        again after a failure between the two, it destroys the key and answers as before."""
        require_reason(ctx.reason, "erase a patient")
        finished = self._finish_erasure(cmd.patient_id)
        if finished is not None:
            return finished
        result = self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda state, __: patients.erase(cmd.legal_basis, ctx.reason, state),
            cmd.patient_id,
        )
        self.destroy_key(cmd.patient_id)
        return result

    @command
    def request_erasure(self, ctx: CommandContext, cmd: ErasePatient) -> tuple[CommandResult, bool]:
        """Two-person erasure: the first call records the request; a call by another user
        carries it out. (result, erased) — erased is False while it waits for a second person.
        """
        require_reason(ctx.reason, "erase a patient")
        finished = self._finish_erasure(cmd.patient_id)
        if finished is not None:
            # Both people decided already; only the key's destruction was left to do.
            return finished, True
        stream = access.erasure_id(cmd.patient_id)
        self.patient(cmd.patient_id)
        pending = self.load(stream, access.evolve_erasure)
        if pending is not None and pending.requested_by != ctx.actor.user_id:
            approver = self.load(ctx.actor.user_id, users.evolve)
            if approver is not None and approver.created_by == pending.requested_by:
                raise NotPermitted(
                    "an account created by the requester cannot approve their erasure request"
                )
            basis = f"{pending.legal_basis} (requested {pending.request_id}, approved)"
            return self.forget(ctx, ErasePatient(cmd.patient_id, basis)), True
        if pending is not None:
            raise ConflictError("the erasure was requested by you: a second person must approve it")
        request_id = self.new_id()
        result = self.start(
            ctx,
            stream,
            cmd.patient_id,
            lambda _: patients.request_erasure(request_id, cmd.legal_basis, ctx.reason),
            result_id=request_id,
        )
        return result, False
