"""ADT: admissions, transfers, discharges, updates and merges as encounter and patient commands.

- A01 (admit) and A04 (register an outpatient): start an encounter (class PV1-2, location
  PV1-3 ward^room^bed, attending PV1-7, admitted PV1-44); they register the patient first
  when the MRN is unknown: the only messages that may.
- A02 (transfer): move the open encounter to PV1-3.
- A03 (discharge): end the open encounter (disposition PV1-36, discharged PV1-45).
- A08 (update): the demographics PID changes, and the attending or class PV1 changes on
  the open encounter; nothing is written for what is unchanged.
- A40 (merge): the record MRG-1 names is merged into the survivor PID-3 names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.encounters import (
    EndEncounter,
    StartEncounter,
    TransferEncounter,
    UpdateEncounter,
)
from events.commands.merges import MergePatients
from services.hl7.contract import Apply, Refusal, Translation
from services.hl7.translate.fields import Message, Segment, timestamp
from services.hl7.translate.patients import (
    PID_FIELDS,
    Demographics,
    PatientRef,
    changed_demographics,
    clinician,
    demographics,
    identifier,
    known_patient,
    patient_or_none,
    registration,
)
from services.hl7.translate.steps import Inbound, Steps

# HL7 table 0004 (patient class) and the classes of an encounter.
CLASSES = {"I": "inpatient", "O": "outpatient", "E": "emergency"}
# HL7 table 0112 (discharge disposition) and the dispositions of an encounter; any other
# code, and none, is "other".
DISPOSITIONS = {
    **dict.fromkeys(("01", "06", "08"), "home"),
    **dict.fromkeys(("02", "03", "04", "05", "43", "61", "62", "63", "65", "66"), "transfer"),
    "07": "left_against_advice",
    **dict.fromkeys(("20", "40", "41", "42"), "deceased"),
}
OUR_DISPOSITIONS = frozenset({"home", "transfer", "deceased", "left_against_advice", "other"})
PV1_FIELDS = {
    "patient_id": "PID-3",
    "encounter_id": "PV1",
    "encounter_class": "PV1-2",
    "location": "PV1-3",
    "ward": "PV1-3",
    "attending_id": "PV1-7",
    "disposition": "PV1-36",
}
TRIGGERS = frozenset({"A01", "A02", "A03", "A04", "A08", "A40"})


@dataclass(frozen=True)
class Visit:
    """What PV1 says about the encounter."""

    segment: Segment
    encounter_class: str | None
    ward: str | None
    room: str | None
    bed: str | None
    admitted_at: datetime | None
    discharged_at: datetime | None
    disposition: str


def visit(pv1: Segment, inbound: Inbound) -> Visit:
    """PV1 read: class, location, admission and discharge times, disposition."""
    code = pv1.get(2).upper()
    if code and code not in CLASSES:
        raise Refusal("AE", "PV1-2", f"patient class {code!r} is not one of I, O, E")
    sent = pv1.get(36)
    disposition = sent.lower() if sent.lower() in OUR_DISPOSITIONS else DISPOSITIONS.get(sent)
    return Visit(
        pv1,
        CLASSES.get(code),
        pv1.get(3, 1) or None,
        pv1.get(3, 2) or None,
        pv1.get(3, 3) or None,
        timestamp(pv1, 44, inbound.zone),
        timestamp(pv1, 45, inbound.zone),
        disposition or "other",
    )


def open_encounter(store: ClinicalStore, patient_id: UUID) -> UUID:
    """The patient's open encounter; ``AE`` when there is none."""
    _, latest = store.latest_encounter(patient_id)
    if latest is None or not latest.open:
        raise Refusal("AE", "PV1", "the patient has no open encounter", patient_id)
    return latest.id


def translate_adt(message: Message, trigger: str, inbound: Inbound) -> Translation:
    """An ADT message of a supported trigger event as its commands."""
    pid = message.require("PID")
    ref = identifier(pid, 3, inbound.authorities)
    when = inbound.event_time(message)
    if trigger == "A40":
        return _merge(message, ref, when, inbound)
    pv1 = message.first("PV1")
    if trigger == "A08":
        demo = demographics(pid)
        seen = visit(pv1, inbound) if pv1 is not None else None
        return inbound.translation(ref.key, _update(ref, demo, seen, when), trigger=trigger)
    if pv1 is None:
        raise Refusal("AR", "PV1", "the PV1 segment is required")
    seen = visit(pv1, inbound)
    if trigger in ("A01", "A04"):
        demo = demographics(pid)
        pv1.require(2, what="the patient class (PV1-2)")
        pv1.require(3, what="the ward (PV1-3.1)")
        pv1.require(7, what="the attending doctor (PV1-7)")
        apply = _start(ref, demo, seen, seen.admitted_at or when)
    elif trigger == "A02":
        pv1.require(3, what="the new location (PV1-3.1)")
        apply = _transfer(ref, seen, when)
    else:
        apply = _end(ref, seen, seen.discharged_at or when)
    return inbound.translation(ref.key, apply, trigger=trigger)


def _start(ref: PatientRef, demo: Demographics, seen: Visit, when: datetime | None) -> Apply:
    # translate_adt checked that PV1 has the class, the ward and the attending.
    encounter_class, ward = seen.encounter_class or "", seen.ward or ""

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        steps = Steps(store, ctx)
        patient_id = patient_or_none(store, ref)
        # The attending first: an unknown one refuses the message before it registers anyone.
        attending = clinician(store, seen.segment, 7, "attending", patient_id)
        if attending is None:
            raise Refusal("AR", "PV1-7", "the attending doctor (PV1-7) is required", patient_id)
        if patient_id is None:
            cmd = registration(ref, demo)
            registered = steps.run(
                "register", "PID-3", lambda c: store.register_patient(c, cmd), fields=PID_FIELDS
            )
            patient_id = registered.id
        steps.patient_id = patient_id
        start = StartEncounter(patient_id, encounter_class, ward, attending, seen.room, seen.bed)
        steps.run(
            "encounter",
            "PV1",
            lambda c: store.start_encounter(c, start),
            occurred_at=when,
            fields=PV1_FIELDS,
        )
        return steps.results

    return apply


def _transfer(ref: PatientRef, seen: Visit, when: datetime | None) -> Apply:
    ward = seen.ward or ""

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        move = TransferEncounter(open_encounter(store, patient_id), ward, seen.room, seen.bed)
        steps.run(
            "transfer",
            "PV1-3",
            lambda c: store.transfer_encounter(c, move),
            occurred_at=when,
            fields=PV1_FIELDS,
        )
        return steps.results

    return apply


def _end(ref: PatientRef, seen: Visit, when: datetime | None) -> Apply:
    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        end = EndEncounter(open_encounter(store, patient_id), seen.disposition)
        steps.run(
            "discharge",
            "PV1",
            lambda c: store.end_encounter(c, end),
            occurred_at=when,
            fields=PV1_FIELDS,
        )
        return steps.results

    return apply


def _update(
    ref: PatientRef, demo: Demographics, seen: Visit | None, when: datetime | None
) -> Apply:
    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        update = changed_demographics(store, patient_id, demo)
        if update is not None:
            steps.run(
                "demographics",
                "PID",
                lambda c: store.update_demographics(c, update),
                occurred_at=when,
                fields=PID_FIELDS,
            )
        change = None if seen is None else _encounter_change(store, patient_id, seen)
        if change is not None:
            steps.run(
                "encounter",
                "PV1",
                lambda c: store.update_encounter(c, change),
                occurred_at=when,
                fields=PV1_FIELDS,
            )
        return steps.results

    return apply


def _encounter_change(
    store: ClinicalStore, patient_id: UUID, seen: Visit
) -> UpdateEncounter | None:
    """What PV1 changes on the open encounter (attending, class); None for nothing, or for a
    patient with no open encounter (an update about demographics only)."""
    _, latest = store.latest_encounter(patient_id)
    if latest is None or not latest.open:
        return None
    attending = clinician(store, seen.segment, 7, "attending", patient_id)
    new_attending = attending if attending not in (None, latest.attending_id) else None
    sent_class = seen.encounter_class
    new_class = sent_class if sent_class not in (None, latest.encounter_class) else None
    if new_attending is None and new_class is None:
        return None
    return UpdateEncounter(latest.id, new_attending, new_class)


def _merge(
    message: Message, survivor: PatientRef, when: datetime | None, inbound: Inbound
) -> Translation:
    mrg = message.require("MRG")
    merged = identifier(mrg, 1, inbound.authorities)
    if merged.key == survivor.key:
        raise Refusal("AE", "MRG-1", "a record cannot be merged into itself")
    fields = {"survivor_id": "PID-3", "merged_id": "MRG-1"}

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        # The records themselves: a merge already made is replayed or refused by the store.
        survivor_id = known_patient(store, survivor, follow_merges=False)
        merged_id = known_patient(store, merged, follow_merges=False)
        steps = Steps(store, ctx, survivor_id)
        cmd = MergePatients(survivor_id, merged_id)
        steps.run(
            "merge",
            "MRG-1",
            lambda c: store.merge_patients(c, cmd),
            occurred_at=when,
            reason=ctx.reason or inbound.reason("merged"),
            fields=fields,
        )
        return steps.results

    return inbound.translation(survivor.key, apply, trigger="A40")
