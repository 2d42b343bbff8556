"""ORM^O01 and OML^O21: lab orders placed (ORC-1 ``NW``) and cancelled (``CA``).

An order is named by its placer order number (ORC-2, else OBR-2): placed under it, the
order's id is the store's keyed id of that number, so every later message with the number
(a cancellation, the results) finds the same order. The test is OBR-4 (a LOINC code: the
triplet coded ``LN``, else the first), the priority TQ1-9, OBR-27.6 or ORC-7.6 (``S`` stat,
``A`` and ``T`` urgent, ``R``, ``P`` and ``C`` routine), the ordering provider ORC-12 or
OBR-16 (a username; absent: the attending of the open encounter, else the sending
system's principal), the cancellation's reason ORC-16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.orders import CancelOrder, DuplicatePlacerNumber, PlaceOrder
from events.domain.errors import NotFound
from services.hl7.contract import Refusal, Translation
from services.hl7.translate.fields import Message, Segment, in_system, text_of, timestamp
from services.hl7.translate.patients import clinician, identifier, known_patient
from services.hl7.translate.steps import Inbound, Steps

PRIORITIES = {
    "S": "stat",
    "A": "urgent",
    "T": "urgent",
    "R": "routine",
    "P": "routine",
    "C": "routine",
    "PRN": "routine",
}
# The segments of an order group besides ORC and OBR.
GROUP_MEMBERS = frozenset({"TQ1", "OBX", "NTE", "SPM"})


@dataclass
class OrderGroup:
    """One order of a message: its ORC and OBR (either may be absent) and what follows."""

    orc: Segment | None = None
    obr: Segment | None = None
    members: tuple[Segment, ...] = ()

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.members if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.members if s.name == name]

    def at(self, field: int) -> str:
        """The location of a field of the group's ORC (of its OBR when it has none)."""
        segment = self.orc or self.obr
        return segment.at(field) if segment is not None else f"ORC-{field}"

    def positions(self) -> dict[str, str]:
        """Where the fields of an order command are in this group."""
        obr = self.obr.at if self.obr is not None else (lambda field: f"OBR-{field}")
        return {
            "patient_id": "PID-3",
            "test_code": obr(4),
            "test_name": obr(4),
            "priority": obr(27),
            "ordering_physician": self.at(12) if self.orc is not None else obr(16),
            "placer_number": self.at(2),
            "order_id": self.at(2),
            "reason": self.at(16),
        }

    @property
    def placer(self) -> str:
        """The placer order number (ORC-2.1, else OBR-2.1); ``AR`` when neither has one."""
        for segment in (self.orc, self.obr):
            if segment is not None and segment.get(2):
                return segment.get(2)
        raise Refusal("AR", self.at(2), "the placer order number (ORC-2 or OBR-2) is required")

    def priority(self) -> str:
        """The priority: TQ1-9, else OBR-27.6, else ORC-7.6; routine when none is sent."""
        tq1 = self.first("TQ1")
        sources = [(tq1, 9, 1), (self.obr, 27, 6), (self.orc, 7, 6)]
        for segment, field, component in sources:
            if segment is None or not segment.get(field, component):
                continue
            code = segment.get(field, component).upper()
            if code not in PRIORITIES:
                raise Refusal("AE", segment.at(field), f"priority {code!r} is not one of S, A, R")
            return PRIORITIES[code]
        return "routine"

    def test(self) -> tuple[str, str]:
        """The ordered test (OBR-4): its LOINC code and name."""
        if self.obr is None:
            raise Refusal("AR", "OBR", "the OBR segment is required")
        self.obr.require(4, what="the test (OBR-4)")
        test = in_system(self.obr, 4, frozenset({"LN"}))
        return test.code, test.text or test.code

    def ordering_provider(self, store: ClinicalStore, patient_id: UUID) -> UUID | None:
        """The user ORC-12 (else OBR-16) names; None when neither names anyone."""
        for segment, field in ((self.orc, 12), (self.obr, 16)):
            if segment is not None and segment.has(field):
                return clinician(store, segment, field, "ordering provider", patient_id)
        return None


def open_attending(store: ClinicalStore, patient_id: UUID) -> UUID | None:
    """The attending of the patient's open encounter: who orders when a message names no
    provider, so that its abnormal results reach a physician's inbox (None: no encounter is
    open, and the sending system's principal orders)."""
    _, latest = store.latest_encounter(patient_id)
    return latest.attending_id if latest is not None and latest.open else None


def order_groups(message: Message) -> list[OrderGroup]:
    """The orders of a message: an ORC starts one, an OBR joins the ORC before it or starts
    one of its own (an ORU's OBR needs no ORC); TQ1, OBX, NTE and SPM join the current one."""
    groups: list[OrderGroup] = []
    for segment in message:
        current = groups[-1] if groups else None
        if segment.name == "ORC":
            groups.append(OrderGroup(orc=segment))
        elif segment.name == "OBR":
            if current is not None and current.obr is None and not _after_obr(current):
                current.obr = segment
            else:
                groups.append(OrderGroup(obr=segment))
        elif current is not None and segment.name in GROUP_MEMBERS:
            current.members = (*current.members, segment)
    return groups


def _after_obr(group: OrderGroup) -> bool:
    return any(s.name in ("OBX", "SPM") for s in group.members)


def find_order(store: ClinicalStore, placer: str) -> UUID | None:
    """The order a placer number names: an order id itself (the backbone's own orders sent
    back), else the order placed under that number; None when the backbone has neither."""
    try:
        as_id = UUID(placer)
    except ValueError:
        as_id = None
    if as_id is not None:
        try:
            store.order(as_id)
        except NotFound:
            pass
        else:
            return as_id
    return store.order_for_placer(placer)


def patients_order(store: ClinicalStore, order_id: UUID, patient_id: UUID, where: str) -> None:
    """``AE`` unless the order belongs to the message's patient (or to a record merged
    into theirs)."""
    if store.survivor_of(store.order(order_id).patient_id) != patient_id:
        raise Refusal("AE", where, "the order belongs to another patient", patient_id)


def place(
    store: ClinicalStore,
    steps: Steps,
    group: OrderGroup,
    patient_id: UUID,
    when: datetime | None,
) -> UUID:
    """Place the group's order under its placer number; answers the order's id."""
    code, name = group.test()
    priority = group.priority()
    physician = group.ordering_provider(store, patient_id) or open_attending(store, patient_id)
    placer = group.placer
    cmd = PlaceOrder(
        patient_id, code, name, priority, placer_number=placer, ordering_physician=physician
    )
    try:
        return steps.run(
            f"order:{placer}",
            group.at(2),
            lambda c: store.place_order(c, cmd),
            occurred_at=when,
            fields=group.positions(),
        ).id
    except DuplicatePlacerNumber as exc:
        raise Refusal(
            "AE", group.at(2), f"an order with placer number {placer} exists already", patient_id
        ) from exc


Plan = Callable[[ClinicalStore, Steps, UUID], None]


def _new_order(group: OrderGroup, inbound: Inbound) -> Plan:
    group.test()  # refuse a message without its test before anything is applied
    group.priority()
    when = timestamp(group.orc, 9, inbound.zone) if group.orc is not None else None

    def plan(store: ClinicalStore, steps: Steps, patient_id: UUID) -> None:
        place(store, steps, group, patient_id, when)

    return plan


def _cancellation(group: OrderGroup, orc: Segment, inbound: Inbound) -> Plan:
    placer = group.placer
    sent_reason = text_of(orc, 16) or None
    when = timestamp(orc, 9, inbound.zone)

    def plan(store: ClinicalStore, steps: Steps, patient_id: UUID) -> None:
        order_id = find_order(store, placer)
        if order_id is None:
            raise Refusal("AE", orc.at(2), f"unknown order {placer}", patient_id)
        patients_order(store, order_id, patient_id, orc.at(2))
        reason = sent_reason or steps.ctx.reason or inbound.reason("cancelled")
        steps.run(
            f"cancel:{placer}",
            orc.at(1),
            lambda c: store.cancel_order(c, CancelOrder(order_id)),
            occurred_at=when,
            reason=reason,
            fields=group.positions(),
        )

    return plan


def translate_orders(message: Message, inbound: Inbound) -> Translation:
    """An ORM^O01 or OML^O21 as its orders' placements and cancellations, in message order."""
    ref = identifier(message.require("PID"), 3, inbound.authorities)
    groups = order_groups(message)
    if not groups:
        raise Refusal("AR", "ORC", "the ORC segment is required")
    plans: list[Plan] = []
    for group in groups:
        if group.orc is None:
            raise Refusal("AR", "ORC", "every order needs its ORC segment")
        control = group.orc.require(1, what="the order control (ORC-1)").upper()
        if control == "NW":
            plans.append(_new_order(group, inbound))
        elif control == "CA":
            plans.append(_cancellation(group, group.orc, inbound))
        else:
            raise Refusal(
                "AR", group.orc.at(1), f"order control {control!r} is not supported (NW, CA)"
            )

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        for plan in plans:
            plan(store, steps, patient_id)
        return steps.results

    placers = ",".join(g.placer for g in groups)
    return inbound.translation(ref.key, apply, orders=placers)
