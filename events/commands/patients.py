"""Commands about patients and their allergies: register, update, record, refute, erase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, command
from events.domain.aggregates import access, patients, users
from events.domain.aggregates.common import require_reason
from events.domain.errors import ConflictError, DuplicateMRN, NotPermitted, PatientErasedError
from events.domain.payloads import patients as p


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

    def patient_id_for_mrn(self, mrn: str) -> UUID:
        """A stable, non-reversible patient id for an MRN: the store's uniqueness key."""
        return self.keyed_id(mrn.strip().upper().encode())

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
        try:
            return self.load(patient_id, patients.evolve)
        except PatientErasedError:
            raise DuplicateMRN(patient_id) from None

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
    def refute_allergy(self, ctx: CommandContext, cmd: RefuteAllergy) -> CommandResult:
        return self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda patient, _: patients.refute_allergy(patient, cmd.allergy_id, ctx.reason),
            cmd.patient_id,
            result_id=cmd.allergy_id,
        )

    @command
    def forget(self, ctx: CommandContext, cmd: ErasePatient) -> CommandResult:
        """Erase a patient: record ``patient.erased``, then destroy their data key."""
        require_reason(ctx.reason, "erase a patient")
        try:
            self.load(cmd.patient_id, patients.evolve)
        except PatientErasedError:
            # Erased before, perhaps interrupted before the key went: finish the job.
            self.destroy_key(cmd.patient_id)
            raise
        result = self.change(
            ctx,
            cmd.patient_id,
            lambda: self.patient(cmd.patient_id),
            lambda _, __: patients.erase(cmd.legal_basis, ctx.reason),
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
