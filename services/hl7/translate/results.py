"""ORU^R01: a lab's results, per OBR, as specimen, results and amendments of the order.

OBR-2 (or ORC-2) names the order: an order id of the backbone itself, or a placer number. An
order the backbone never saw is placed from the OBR first (test OBR-4, priority, the
ordering provider ORC-12 / OBR-16; when neither names one, the attending of the open
encounter, so abnormal results reach a physician's inbox, else the sending system). A placed
order's specimen is recorded collected at OBR-7 (the SPM-4 or OBR-15 specimen type), then
the results are received. Each OBX is one analyte: value OBX-5 read by its type OBX-2 (NM,
SN, ST, TX, FT, CE, CWE), unit OBX-6, reference range OBX-7, status OBX-11 (P preliminary, F
final, C a correction). Abnormal flags (OBX-8) are not taken: the backbone computes them
from the value, the range and the critical limits.

An OBX whose code already has a result in the order amends it (finalises a preliminary one,
corrects on ``C``) instead of adding a second result; an OBX equal to the result it would
replace is skipped, so a message applied again (after a failure half-way) stores nothing
twice. A final result changed without ``C`` is refused: the lab must say it is a correction."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.orders import (
    AmendResult,
    AnalyteInput,
    CollectSpecimen,
    DuplicatePlacerNumber,
    ReceiveResults,
)
from events.domain.aggregates.orders import LabOrder, Result
from events.domain.errors import ClinicalRuleViolation
from events.domain.rules.results import parse_value
from services.hl7.contract import Refusal, Translation
from services.hl7.translate.fields import Message, Segment, in_system, number, text_of, timestamp
from services.hl7.translate.orders import (
    OrderGroup,
    find_order,
    order_groups,
    patients_order,
    place,
)
from services.hl7.translate.patients import identifier, known_patient
from services.hl7.translate.steps import Inbound, Steps

Status = Literal["P", "F", "C"]
STATUSES: dict[str, Status] = {"P": "P", "F": "F", "C": "C"}
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
CODED_TYPES = frozenset({"CE", "CWE"})
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"^({_NUMBER})\s*[-_]\s*({_NUMBER})$")
_BOUND = re.compile(rf"^(<=|>=|<|>)\s*({_NUMBER})$")
# Where the fields of a result are, and of its order (the ORU's OBR-7 and SPM-4).
OBX_FIELDS = {
    "value": 5,
    "unit": 6,
    "reference_low": 7,
    "reference_high": 7,
    "status": 11,
    "code": 3,
    "name": 3,
}
ORDER_FIELDS = {"collected_at": "OBR-7", "specimen_type": "SPM-4", "order_id": "OBR-2"}


@dataclass(frozen=True)
class Observation:
    """One OBX read: the analyte and its value, unit, range, status and time."""

    segment: Segment
    code: str
    name: str
    value: float | str
    unit: str | None
    reference_low: float | None
    reference_high: float | None
    status: Status
    observed_at: datetime | None

    def positions(self, prefix: str = "") -> dict[str, str]:
        """Where each field of the result is in this OBX (``results.2.unit``: OBX[3]-6)."""
        return {prefix + name: self.segment.at(field) for name, field in OBX_FIELDS.items()}

    def analyte(self, status: str | None) -> AnalyteInput:
        return AnalyteInput(
            self.code,
            self.name,
            self.value,
            self.unit,
            self.reference_low,
            self.reference_high,
            status,
        )


def reference_range(text: str) -> tuple[float | None, float | None]:
    """OBX-7: ``70-105`` or ``70_105`` (low and high), ``<5`` (high), ``>60`` (low); a range
    that is not numeric (``negative``) gives none."""
    text = text.strip()
    if found := _RANGE.match(text):
        return float(found.group(1)), float(found.group(2))
    if found := _BOUND.match(text):
        bound = float(found.group(2))
        return (None, bound) if found.group(1).startswith("<") else (bound, None)
    return None, None


def structured_numeric(obx: Segment) -> float | str:
    """An SN value (comparator^number^separator^number): a number, ``<5`` / ``>=60``, or
    the text of a range or ratio (``10-20``, ``1:128``)."""
    comparator, first = obx.get(5, 1), obx.get(5, 2)
    separator, second = obx.get(5, 3), obx.get(5, 4)
    if not first:
        raise Refusal("AR", obx.at(5), "a structured numeric value (OBX-5.2) is required")
    number(obx, 5, 2)  # refuses a malformed number
    if separator or second:
        return f"{comparator}{first}{separator}{second}"
    if comparator in ("", "="):
        return float(first)
    # ``<5``, ``>=60`` keep their comparator; ``<>5`` stays text.
    return f"{comparator}{first}"


def observation(obx: Segment, zone: tzinfo) -> Observation:
    """An OBX as the analyte it reports."""
    obx.require(3, what="the observation identifier (OBX-3)")
    code = in_system(obx, 3, frozenset({"LN"}))
    kind = obx.require(2, what="the value type (OBX-2)").upper()
    if not obx.has(5):
        raise Refusal("AR", obx.at(5), "the observation value (OBX-5) is required")
    value: float | str
    if kind == "NM":
        measured = number(obx, 5)
        if measured is None:
            raise Refusal("AR", obx.at(5), "a numeric value (OBX-5) is required")
        value = measured
    elif kind == "SN":
        value = structured_numeric(obx)
    elif kind in TEXT_TYPES:
        value = " ".join(obx.get(5, 1, rep) for rep in range(1, obx.repetitions(5) + 1))
    elif kind in CODED_TYPES:
        value = text_of(obx, 5)
    else:
        raise Refusal("AR", obx.at(2), f"value type {kind} is not supported")
    status = obx.require(11, what="the result status (OBX-11)").upper()
    if status not in STATUSES:
        raise Refusal("AE", obx.at(11), f"result status {status!r} is not one of P, F, C")
    low, high = reference_range(obx.get(7))
    return Observation(
        obx,
        code.code,
        code.text or code.code,
        value,
        obx.get(6, 1) or obx.get(6, 2) or None,
        low,
        high,
        STATUSES[status],
        timestamp(obx, 14, zone),
    )


@dataclass(frozen=True)
class Report:
    """One OBR of an ORU: the order it reports on, the specimen and the observations."""

    group: OrderGroup
    placer: str
    collected_at: datetime | None
    specimen_type: str | None
    observations: tuple[Observation, ...]

    @property
    def observed_at(self) -> datetime | None:
        return next((o.observed_at for o in self.observations if o.observed_at), None)


def report(group: OrderGroup, zone: tzinfo) -> Report:
    """An OBR group read; the test and priority are checked too, for an unseen order."""
    obr = group.obr
    if obr is None:
        raise Refusal("AR", "OBR", "the OBR segment is required")
    group.test()
    group.priority()
    observations = tuple(observation(obx, zone) for obx in group.all("OBX"))
    if not observations:
        raise Refusal("AR", "OBX", "an OBR without OBX segments reports no result")
    spm = group.first("SPM")
    collected_at = timestamp(obr, 7, zone)
    if collected_at is None and spm is not None:
        collected_at = timestamp(spm, 17, zone)
    specimen = text_of(spm, 4) if spm is not None else ""
    return Report(group, group.placer, collected_at, specimen or None, observations)


def _same(result: Result, observed: Observation) -> bool:
    """Whether an OBX says what the stored result says already."""
    try:
        reported = parse_value(observed.value)
    except ClinicalRuleViolation:
        return False
    unit = observed.unit.strip() or None if observed.unit is not None else None
    sent = (reported.value, reported.comparator, reported.text, unit)
    stored = (result.value, result.comparator, result.value_text, result.unit)
    ranges = (observed.reference_low, observed.reference_high)
    return sent == stored and ranges == (result.reference_low, result.reference_high)


Amendment = tuple[UUID, AnalyteInput, Observation]
New = tuple[AnalyteInput, Observation]


def sort_out(
    order: LabOrder, observations: tuple[Observation, ...], patient_id: UUID
) -> tuple[list[New], list[Amendment]]:
    """The new results of a report, and the amendments of results the order has."""
    new: list[New] = []
    amendments: list[Amendment] = []
    for observed in observations:
        earlier = next((r for r in reversed(order.results) if r.code == observed.code), None)
        if earlier is None:
            if observed.status == "C":
                raise Refusal(
                    "AE",
                    observed.segment.at(11),
                    f"no result of {observed.code} to correct",
                    patient_id,
                )
            status = "preliminary" if observed.status == "P" else "final"
            new.append((observed.analyte(status), observed))
            continue
        if observed.status == "P":
            target = "preliminary"
        elif observed.status == "F" or earlier.status == "preliminary":
            target = "final"
        else:
            target = "corrected"
        applied = earlier.status == target or (target == "final" and earlier.status == "corrected")
        if applied and _same(earlier, observed):
            continue
        if earlier.status != "preliminary" and observed.status != "C":
            raise Refusal(
                "AE",
                observed.segment.at(11),
                f"a {earlier.status} result of {observed.code} exists: send a change as a "
                "correction (OBX-11 C)",
                patient_id,
            )
        amendments.append((earlier.result_id, observed.analyte(target), observed))
    return new, amendments


def _apply_report(
    store: ClinicalStore, steps: Steps, found: Report, patient_id: UUID, inbound: Inbound
) -> None:
    placer = found.placer
    order_id = find_order(store, placer)
    if order_id is None:
        try:
            order_id = place(store, steps, found.group, patient_id, found.collected_at)
        except DuplicatePlacerNumber:  # pragma: no cover - placed meanwhile by a message
            order_id = store.placer_order_id(placer)
    patients_order(store, order_id, patient_id, found.group.at(2))
    if store.order(order_id).status == "placed":
        collect = CollectSpecimen(order_id, found.collected_at, found.specimen_type)
        steps.run(
            f"specimen:{placer}",
            "OBR-7",
            lambda c: store.collect_specimen(c, collect),
            occurred_at=found.collected_at,
            fields=ORDER_FIELDS,
        )
    new, amendments = sort_out(store.order(order_id), found.observations, patient_id)
    if new:
        received = ReceiveResults(order_id, tuple(analyte for analyte, _ in new))
        fields = dict(ORDER_FIELDS)
        for index, (_, observed) in enumerate(new):
            fields |= observed.positions(f"results.{index}.")
        steps.run(
            f"results:{placer}",
            "OBX",
            lambda c: store.receive_results(c, received),
            occurred_at=found.observed_at or found.collected_at,
            fields=fields,
        )
    for result_id, corrected, observed in amendments:
        steps.run(
            f"amend:{placer}:{observed.code}",
            observed.segment.at(5),
            _amending(store, AmendResult(order_id, result_id, corrected)),
            occurred_at=observed.observed_at,
            reason=steps.ctx.reason or inbound.reason("corrected"),
            fields={**observed.positions(), **ORDER_FIELDS},
        )


def _amending(store: ClinicalStore, cmd: AmendResult) -> Callable[[CommandContext], CommandResult]:
    return lambda ctx: store.amend_result(ctx, cmd)


def translate_results(message: Message, inbound: Inbound) -> Translation:
    """An ORU^R01 as, per OBR, its order (placed if unseen), specimen and results."""
    ref = identifier(message.require("PID"), 3, inbound.authorities)
    reports = [report(group, inbound.zone) for group in order_groups(message)]
    if not reports:
        raise Refusal("AR", "OBR", "the OBR segment is required")

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        for found in reports:
            _apply_report(store, steps, found, patient_id, inbound)
        return steps.results

    return inbound.translation(ref.key, apply, orders=",".join(r.placer for r in reports))
