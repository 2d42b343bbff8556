"""The commands of one clinical resource: vital signs, a lab order with its results, a
prescription, an allergy. Each answers, per entry it covers, its command results (with
notes to show) or why it was not mapped.

A lab order is placed, its specimen collected at the report's time and its results
received, as the HL7 ORU translation does; its placer number is the report's (or the lone
Observation's) own identity, so the same resource always names the same order.
"""

from __future__ import annotations

from uuid import UUID

from events.commands.base import CommandResult
from events.commands.medications import DiscontinueMedication
from events.commands.observations import RecordObservation, RecordVitals
from events.commands.orders import CollectSpecimen, PlaceOrder, ReceiveResults
from events.commands.patients import ChangeAllergyStatus
from events.domain.rules.medications import NOT_SCREENED
from services.fhir.importing.allergies import allergy
from services.fhir.importing.fields import (
    LOINC,
    Unmappable,
    code_in,
    display,
    effective,
    instant,
)
from services.fhir.importing.medications import prescription
from services.fhir.importing.observations import lab_analyte, vital_command
from services.fhir.importing.plan import Work
from services.fhir.importing.reader import Entry
from services.fhir.importing.steps import Refused, Steps

Done = tuple[list[CommandResult], tuple[str, ...]]
Outcome = Done | Refused | Unmappable
Answer = list[tuple[Entry, Outcome]]


def run_work(steps: Steps, patient_id: UUID, work: Work) -> Answer:
    """Run one unit of work; what it answers covers every entry of it."""
    try:
        if work.kind == "lab":
            return _lab(steps, patient_id, work)
        run = {"vitals": _vitals, "medication": _medication, "allergy": _allergy}[work.kind]
        return [(work.entry, run(steps, patient_id, work.entry))]
    except (Refused, Unmappable) as exc:
        return [(entry, exc) for entry in _covered(work)]


def _covered(work: Work) -> list[Entry]:
    return list({e.index: e for e in [work.entry, *work.results]}.values())


def _vitals(steps: Steps, patient_id: UUID, entry: Entry) -> Done:
    command = vital_command(entry.resource, patient_id)
    at = effective(entry.resource)
    store = steps.store
    if isinstance(command, RecordObservation):
        measure: RecordObservation = command
        result = steps.run(entry, "observation", lambda c: store.record_observation(c, measure), at)
        return [result], ()
    vitals: RecordVitals = command
    result = steps.run(entry, "vitals", lambda c: store.record_vitals(c, vitals), at)
    flags = result.detail.get("flags") or {}
    return [result], tuple(f"{name} flagged {flag}" for name, flag in flags.items() if flag)


def _lab(steps: Steps, patient_id: UUID, work: Work) -> Answer:
    answer: Answer = []
    analytes = []
    mapped: list[Entry] = []
    for entry in work.results:
        try:
            analytes.append(lab_analyte(entry.resource))
            mapped.append(entry)
        except Unmappable as exc:
            answer.append((entry, exc))
    report = work.entry
    if not analytes:
        if report not in work.results:
            answer.append((report, Unmappable("none of its results is mappable")))
        return answer
    concept = report.resource.get("code")
    test_code = code_in(concept, LOINC)
    if test_code is None:
        raise Unmappable("a lab report without a LOINC code")
    at = effective(report.resource)
    store = steps.store
    place = PlaceOrder(
        patient_id,
        test_code,
        display(concept, test_code),
        "routine",
        placer_number=steps.key(report, "order"),
    )
    placed = steps.run(report, "order", lambda c: store.place_order(c, place), at)
    collect = CollectSpecimen(placed.id, at)
    collected = steps.run(report, "specimen", lambda c: store.collect_specimen(c, collect), at)
    receive = ReceiveResults(placed.id, tuple(analytes))
    reported = instant(report.resource.get("issued"), "issued") or at
    received = steps.run(report, "results", lambda c: store.receive_results(c, receive), reported)
    flagged = {
        str(r.get("code")): str(r.get("flag"))
        for r in received.detail.get("results", [])
        if r.get("flag") not in (None, "N")
    }
    if report not in work.results:
        answer.append((report, ([placed, collected, received], ())))
    for entry, analyte in zip(mapped, analytes, strict=True):
        note = (f"flagged {flagged[analyte.code]}",) if analyte.code in flagged else ()
        answer.append((entry, ([received], note)))
    return answer


def _medication(steps: Steps, patient_id: UUID, entry: Entry) -> Done:
    wanted = prescription(entry.resource, patient_id)
    at = instant(entry.resource.get("authoredOn"), "authoredOn")
    store = steps.store
    prescribed = steps.run(entry, "prescribe", lambda c: store.prescribe(c, wanted.command), at)
    alerts = prescribed.detail.get("alerts_overridden", [])
    notes = tuple(str(a) for a in alerts if str(a).startswith(NOT_SCREENED))
    results = [prescribed]
    if wanted.ended_as is not None:
        stop = DiscontinueMedication(prescribed.id)
        results.append(
            steps.run(
                entry,
                "discontinue",
                lambda c: store.discontinue_medication(c, stop),
                at,
                reason=f"imported as {wanted.ended_as}",
            )
        )
    return results, notes


def _allergy(steps: Steps, patient_id: UUID, entry: Entry) -> Done:
    wanted = allergy(entry.resource, patient_id)
    resource = entry.resource
    at = instant(resource.get("recordedDate") or resource.get("onsetDateTime"), "recordedDate")
    store = steps.store
    recorded = steps.run(entry, "record", lambda c: store.record_allergy(c, wanted.command), at)
    results = [recorded]
    if wanted.inactive:
        change = ChangeAllergyStatus(patient_id, recorded.id, "inactive")
        results.append(
            steps.run(
                entry,
                "inactivate",
                lambda c: store.change_allergy_status(c, change),
                at,
                reason="imported as inactive",
            )
        )
    assumed = f"severity not stated: recorded as {wanted.command.severity}"
    return results, (assumed,) if wanted.severity_assumed else ()
