"""Commands about lab orders and their results: place, collect, result, amend, acknowledge.

An order and its results name the patient's open encounter. An order placed with the
ordering system's ``placer_number`` is the stream ``keyed_id("order-placer:<number>")``:
the same number always names the same order, and a second placement with it (a race or a
resend) is refused (409) instead of opening a second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import TypeAdapter

from events.commands.base import CommandContext, CommandResult, JsonDict, command
from events.commands.context import ClinicalContext
from events.domain.aggregates import access, orders, users
from events.domain.aggregates.orders import AnalyteInput, DuplicatePlacerNumber
from events.domain.clinical_time import clinical_time
from events.domain.errors import NotFound, PatientErasedError
from events.domain.payloads import orders as o
from events.domain.payloads.base import NonEmpty

__all__ = [
    "ESCALATION_ROLES",
    "AcknowledgeResult",
    "AmendResult",
    "AnalyteInput",
    "CancelOrder",
    "CollectSpecimen",
    "DuplicatePlacerNumber",
    "EscalateResult",
    "OrderCommands",
    "PlaceOrder",
    "ReceiveResults",
]


@dataclass(frozen=True)
class PlaceOrder:
    """A lab test ordered for a patient (LOINC code, priority).

    ``placer_number`` is the ordering system's number of the order (HL7 v2 ORC-2): it names
    the order for good. ``ordering_physician`` is who ordered it (an active physician); None
    is the actor."""

    patient_id: UUID
    test_code: str
    test_name: str
    priority: str
    placer_number: str | None = None
    ordering_physician: UUID | None = None


@dataclass(frozen=True)
class CollectSpecimen:
    """The specimen of an order was collected (now, unless ``collected_at`` says when)."""

    order_id: UUID
    collected_at: datetime | None = None
    specimen_type: str | None = None


@dataclass(frozen=True)
class ReceiveResults:
    """The lab's results of an order, one per analyte."""

    order_id: UUID
    analytes: tuple[AnalyteInput, ...]


@dataclass(frozen=True)
class AmendResult:
    """A corrected value of one result (the context carries the reason)."""

    order_id: UUID
    result_id: UUID
    corrected: AnalyteInput


@dataclass(frozen=True)
class AcknowledgeResult:
    """The ordering physician saw a result."""

    order_id: UUID
    result_id: UUID


@dataclass(frozen=True)
class EscalateResult:
    """A critical result left unacknowledged for ``after``: notify the rest of the team."""

    order_id: UUID
    result_id: UUID
    after: timedelta


# Who of the care team an unacknowledged critical result is escalated to.
ESCALATION_ROLES = ("nurse", "physician", "pharmacist")


@dataclass(frozen=True)
class CancelOrder:
    """Cancel an order (the context carries the reason)."""

    order_id: UUID


def _results_detail(payload: o.ResultReceived) -> JsonDict:
    return {
        "results": [
            {
                "result_id": str(r.result_id),
                "code": r.code,
                "flag": r.flag,
                "status": r.status,
                "value_type": r.value_type,
                "comparator": r.comparator,
            }
            for r in payload.results
        ]
    }


_PLACER = TypeAdapter(NonEmpty)


class OrderCommands(ClinicalContext):
    """The write API of lab orders and results."""

    def placer_order_id(self, placer_number: str) -> UUID:
        """The id of the order with this placer number (whether it exists or not)."""
        number = _PLACER.validate_python(placer_number)
        return self.keyed_id(f"order-placer:{number}".encode())

    def order_for_placer(self, placer_number: str) -> UUID | None:
        """The id of the order placed with this placer number, or None if there is none."""
        order_id = self.placer_order_id(placer_number)
        try:
            found = self.load(order_id, orders.evolve)
        except PatientErasedError:
            return order_id  # it exists; its patient's data is gone
        return order_id if found is not None else None

    def order(self, order_id: UUID) -> orders.LabOrder:
        """The order's current state, or NotFound."""
        state = self.load(order_id, orders.evolve)
        if state is None:
            raise NotFound("lab order", order_id)
        return state

    @command
    def place_order(self, ctx: CommandContext, cmd: PlaceOrder) -> CommandResult:
        """Place an order in the patient's open encounter; with a placer number, under the
        id that number names (refused when an order has it)."""
        placer = None if cmd.placer_number is None else _PLACER.validate_python(cmd.placer_number)
        order_id = self.new_id() if placer is None else self.placer_order_id(placer)

        def existing() -> orders.LabOrder | None:
            if placer is None:
                return None
            try:
                return self.load(order_id, orders.evolve)
            except PatientErasedError:
                raise DuplicatePlacerNumber(None) from None

        def decide(found: orders.LabOrder | None, _: datetime) -> o.OrderPlaced:
            self.patient(cmd.patient_id)
            physician = self.physician_for(ctx, cmd.ordering_physician, "ordering_physician")
            return orders.place(
                cmd.test_code,
                cmd.test_name,
                cmd.priority,
                physician,
                encounter_id=self.open_encounter_id(cmd.patient_id),
                placer_number=placer,
                existing=found,
                patient_id=cmd.patient_id,
            )

        conflict = DuplicatePlacerNumber(None) if placer is not None else None
        return self.change(ctx, order_id, existing, decide, cmd.patient_id, on_conflict=conflict)

    @command
    def collect_specimen(self, ctx: CommandContext, cmd: CollectSpecimen) -> CommandResult:
        def decide(order: orders.LabOrder, now: datetime) -> o.SpecimenCollected:
            collected_at = cmd.collected_at or now
            clinical_time(collected_at, now, None, "collected_at")
            return orders.collect_specimen(order, collected_at, now, cmd.specimen_type)

        return self.change_record(ctx, cmd.order_id, self.order, decide)

    @command
    def receive_results(self, ctx: CommandContext, cmd: ReceiveResults) -> CommandResult:
        result_ids = [self.new_id() for _ in cmd.analytes]
        return self.change_record(
            ctx,
            cmd.order_id,
            self.order,
            lambda order, _: orders.receive_results(
                order, list(cmd.analytes), result_ids, self.open_encounter_id(order.patient_id)
            ),
            detail=_results_detail,
        )

    @command
    def amend_result(self, ctx: CommandContext, cmd: AmendResult) -> CommandResult:
        return self.change_record(
            ctx,
            cmd.order_id,
            self.order,
            lambda order, _: orders.amend_result(order, cmd.result_id, cmd.corrected, ctx.reason),
            result_id=cmd.result_id,
            detail=lambda payload: {"flag": payload.flag, "status": payload.status},
        )

    @command
    def escalate_result(self, ctx: CommandContext, cmd: EscalateResult) -> CommandResult:
        """Record ``result.escalated`` naming the care-team members notified: every active
        nurse, physician and pharmacist on the team except the ordering physician."""

        def decide(order: orders.LabOrder, now: datetime) -> o.ResultEscalated:
            recipients = self._escalation_recipients(order)
            return orders.escalate(order, cmd.result_id, recipients, cmd.after, now)

        return self.change_record(
            ctx,
            cmd.order_id,
            self.order,
            decide,
            result_id=cmd.result_id,
            detail=lambda payload: {"notified": [str(r.user_id) for r in payload.notified]},
        )

    def _escalation_recipients(self, order: orders.LabOrder) -> list[o.EscalationRecipient]:
        team = self.load(access.care_team_id(order.patient_id), access.evolve_care_team)
        found = []
        for member in sorted(team.members if team is not None else ()):
            if member == order.ordering_physician:
                continue
            user = self.load(member, users.evolve)
            if user is not None and user.may_log_in and user.role in ESCALATION_ROLES:
                found.append(o.EscalationRecipient(user_id=user.id, role=user.role))
        return found

    @command
    def acknowledge_result(self, ctx: CommandContext, cmd: AcknowledgeResult) -> CommandResult:
        return self.change_record(
            ctx,
            cmd.order_id,
            self.order,
            lambda order, _: orders.acknowledge(order, cmd.result_id),
            result_id=cmd.result_id,
        )

    @command
    def cancel_order(self, ctx: CommandContext, cmd: CancelOrder) -> CommandResult:
        return self.change_record(
            ctx, cmd.order_id, self.order, lambda order, _: orders.cancel(order, ctx.reason)
        )
