"""Commands about medications: prescribe, change, discontinue, give, and pharmacy decisions.

A prescription names the patient's open encounter; its dose, a change's and a given dose
are checked against per-kg limits at the patient's latest recorded weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.commands.base import CommandContext, CommandResult, JsonDict, command
from events.commands.context import ClinicalContext
from events.domain.aggregates import medications
from events.domain.clinical_time import clinical_time
from events.domain.errors import NotFound
from events.domain.payloads import medications as m


@dataclass(frozen=True)
class Prescribe:
    """A prescription; ``override_reason`` acknowledges the safety alerts it raises.

    ``prescriber`` is who prescribed it (an active physician); None is the actor."""

    patient_id: UUID
    drug_code: str
    drug_name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str
    override_reason: str | None = None
    prescriber: UUID | None = None


@dataclass(frozen=True)
class ChangeMedication:
    """A new dose, unit or frequency (None keeps it; the context carries the reason)."""

    medication_id: UUID
    dose: float | None = None
    dose_unit: str | None = None
    frequency: str | None = None
    override_reason: str | None = None


@dataclass(frozen=True)
class DiscontinueMedication:
    """Stop a medication (the context carries the reason)."""

    medication_id: UUID


@dataclass(frozen=True)
class RecordAdministration:
    """A dose given; unset fields default to the order's route and unit, and to now.

    ``override_reason`` says why a non-standard dose is given: the order is discontinued,
    rejected or not yet verified by pharmacy, or the dose differs from the ordered one.
    """

    medication_id: UUID
    dose: float
    dose_unit: str | None = None
    route: str | None = None
    administered_at: datetime | None = None
    override_reason: str | None = None


@dataclass(frozen=True)
class PharmacyDecision:
    """The pharmacist verified or rejected one version of an order (a rejection needs a
    reason in the context)."""

    medication_id: UUID
    item_id: UUID
    order_version: int
    verified: bool


def _set(**fields: object) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


def _overridden(payload: m.MedicationPrescribed) -> JsonDict:
    return {"alerts_overridden": list(payload.alerts_overridden)}


class MedicationCommands(ClinicalContext):
    """The write API of medication orders and the pharmacy's decisions."""

    def medication(self, medication_id: UUID) -> medications.MedicationOrder:
        """The medication order's current state, or NotFound."""
        state = self.load(medication_id, medications.evolve)
        if state is None:
            raise NotFound("medication order", medication_id)
        return state

    @command
    def prescribe(self, ctx: CommandContext, cmd: Prescribe) -> CommandResult:
        medication_id = self.new_id()

        def decide(now: datetime) -> m.MedicationPrescribed:
            patient = self.patient(cmd.patient_id)
            prescriber = self.physician_for(ctx, cmd.prescriber, "prescriber")
            wanted = m.MedicationPrescribed.model_validate(
                _set(
                    drug_code=cmd.drug_code,
                    drug_name=cmd.drug_name,
                    dose=cmd.dose,
                    dose_unit=cmd.dose_unit,
                    route=cmd.route,
                    frequency=cmd.frequency,
                    override_reason=cmd.override_reason,
                    prescriber=prescriber,
                    encounter_id=self.open_encounter_id(cmd.patient_id),
                )
            )
            on = (ctx.occurred_at or now).date()
            weight = self.latest_weight_kg(cmd.patient_id)
            return medications.prescribe(patient, wanted, on, weight)

        return self.start(ctx, medication_id, cmd.patient_id, decide, detail=_overridden)

    @command
    def change_medication(self, ctx: CommandContext, cmd: ChangeMedication) -> CommandResult:
        def decide(order: medications.MedicationOrder, now: datetime) -> m.MedicationChanged:
            patient = self.patient(order.patient_id)
            wanted = m.MedicationChanged.model_validate(
                _set(
                    dose=cmd.dose,
                    dose_unit=cmd.dose_unit,
                    frequency=cmd.frequency,
                    override_reason=cmd.override_reason,
                )
            )
            on = (ctx.occurred_at or now).date()
            weight = self.latest_weight_kg(order.patient_id)
            return medications.change(order, wanted, ctx.reason, patient, on, weight)

        return self.change_record(ctx, cmd.medication_id, self.medication, decide)

    @command
    def discontinue_medication(
        self, ctx: CommandContext, cmd: DiscontinueMedication
    ) -> CommandResult:
        return self.change_record(
            ctx,
            cmd.medication_id,
            self.medication,
            lambda order, _: medications.discontinue(order, ctx.reason),
        )

    @command
    def record_administration(
        self, ctx: CommandContext, cmd: RecordAdministration
    ) -> CommandResult:
        administration_id = self.new_id()

        def decide(order: medications.MedicationOrder, now: datetime) -> m.MedicationAdministered:
            if cmd.administered_at is not None:
                clinical_time(cmd.administered_at, now, None, "administered_at")
            given = m.MedicationAdministered.model_validate(
                _set(
                    administration_id=administration_id,
                    dose=cmd.dose,
                    dose_unit=cmd.dose_unit or order.dose_unit,
                    route=cmd.route or order.route,
                    administered_at=cmd.administered_at or now,
                    override_reason=cmd.override_reason,
                )
            )
            weight = self.latest_weight_kg(order.patient_id)
            return medications.administer(order, given, now, weight)

        return self.change_record(
            ctx, cmd.medication_id, self.medication, decide, result_id=administration_id
        )

    @command
    def pharmacy_decision(self, ctx: CommandContext, cmd: PharmacyDecision) -> CommandResult:
        def decide(
            order: medications.MedicationOrder, _: datetime
        ) -> m.PharmacyVerified | m.PharmacyRejected:
            kind = m.PharmacyVerified if cmd.verified else m.PharmacyRejected
            decision = kind(item_id=cmd.item_id, order_version=cmd.order_version)
            return medications.pharmacy_decision(order, cmd.order_version, decision, ctx.reason)

        return self.change_record(
            ctx, cmd.medication_id, self.medication, decide, result_id=cmd.item_id
        )
