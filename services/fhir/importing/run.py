"""The import driver: a read input, planned, run through ``ClinicalStore`` as the typed
commands of every other entry point, and reported per resource.

``permit``, when given, is asked before each resource's commands with what they do
(``register``, ``encounter``, ``vitals``, ``lab``, ``medication``, ``allergy``): the FHIR
endpoint refuses there what the caller's role may not write; the context's guard does the
care-team check as for ``/v1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.encounters import EndEncounter, StartEncounter
from events.domain.errors import DomainError, DuplicateMRN
from services.fhir.importing import patients
from services.fhir.importing.encounters import DEFAULT_WARD, visit
from services.fhir.importing.fields import Unmappable, reference
from services.fhir.importing.plan import Plan, Visit, Work, plan
from services.fhir.importing.reader import Entry, Source
from services.fhir.importing.report import Line, Report, Status
from services.fhir.importing.steps import Refused, Steps
from services.fhir.importing.work import run_work

log = logging.getLogger(__name__)
Permit = Callable[[str], None]


@dataclass
class Importer:
    """One import: the store, who imports (and their guard), and the source read."""

    store: ClinicalStore
    ctx: CommandContext
    source: Source
    ward: str = DEFAULT_WARD
    attending: UUID | None = None
    permit: Permit | None = None
    progress: Callable[[int], None] | None = None
    report: Report = field(default_factory=Report)
    refs: dict[str, UUID] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.steps = Steps(self.store, self.ctx, self.source.tag)

    def line(self, line: Line) -> None:
        self.report.add(line)
        if self.progress is not None:
            self.progress(1)

    def refuse(self, entry: Entry, reason: str, status: int = 422) -> None:
        self.line(
            Line(entry.index, entry.resource_type, Status.NOT_MAPPABLE, None, reason, (), status),
        )

    def done(self, entry: Entry, results: list[CommandResult], notes: tuple[str, ...] = ()) -> None:
        replayed = bool(results) and all(r.replayed for r in results)
        status = Status.ALREADY if replayed else Status.IMPORTED
        http = 200 if replayed else 201
        self.line(
            Line(entry.index, entry.resource_type, status, results[0].id, None, notes, http),
        )

    def allowed(self, what: str) -> None:
        if self.permit is not None:
            self.permit(what)

    def run(self) -> Report:
        """Run the plan; every entry gets its line in the report."""
        found: Plan = plan(self.source.entries)
        for entry, reason in found.unmappable:
            self.refuse(entry, reason)
        for entry in found.patients:
            self._patient(entry)
        timeline: dict[UUID | None, tuple[list[Visit], list[Work]]] = {}
        for subject, visits in found.visits.items():
            timeline.setdefault(self._subject(subject), ([], []))[0].extend(visits)
        for subject, loose in found.loose.items():
            timeline.setdefault(self._subject(subject), ([], []))[1].extend(loose)
        for patient_id, (visits, loose) in timeline.items():
            visits.sort(key=lambda v: (v.at, v.entry.index))
            loose.sort(key=lambda w: (w.at, w.entry.index))
            self._patient_timeline(patient_id, visits, loose)
        log.info("fhir import done", extra={"counts": self.report.totals()})
        return self.report

    def _subject(self, ref: str) -> UUID | None:
        """The backbone patient a reference names: one of the input, else an existing one."""
        if ref in self.refs:
            return self.refs[ref]
        tail = ref.removeprefix("Patient/")
        if ref.startswith("Patient/"):
            try:
                candidate = UUID(tail)
                self.store.patient(candidate)
            except (ValueError, DomainError):
                return None
            return candidate
        return None

    def _patient(self, entry: Entry) -> None:
        try:
            self.allowed("register")
            command = patients.register_command(entry.resource)
            try:
                result = self.steps.run(
                    entry,
                    "register",
                    lambda c: self.store.register_patient(c, command),
                    None,
                    guarded=False,
                )
            except Refused as exc:
                if not isinstance(exc.__cause__, DuplicateMRN):
                    raise
                # Registered before by another entry point: the MRN matches it.
                patient_id = exc.__cause__.existing_id
                self._name(entry, patient_id)
                self.line(
                    Line(
                        entry.index,
                        "Patient",
                        Status.ALREADY,
                        patient_id,
                        None,
                        ("matched by MRN",),
                        200,
                    ),
                )
                return
        except Unmappable as exc:
            self.refuse(entry, str(exc))
            return
        except Refused as exc:
            self.refuse(entry, exc.reason, exc.status)
            return
        self._name(entry, result.id)
        self.done(entry, [result])

    def _name(self, entry: Entry, patient_id: UUID) -> None:
        for name in entry.names():
            self.refs[name] = patient_id
        self.refs[f"Patient/{patient_id}"] = patient_id

    def _patient_timeline(
        self, patient_id: UUID | None, visits: list[Visit], loose: list[Work]
    ) -> None:
        if patient_id is None:
            covered = [v.entry for v in visits]
            for work in [*(w for v in visits for w in v.work), *loose]:
                covered.extend([work.entry, *work.results])
            for entry in {e.index: e for e in covered}.values():
                self.refuse(entry, "its subject is not a patient of this input or of the backbone")
            return
        for item in visits:
            self._visit(patient_id, item)
        for work in loose:
            self._work(patient_id, work)

    def _visit(self, patient_id: UUID, item: Visit) -> None:
        entry = item.entry
        started: CommandResult | None = None
        try:
            self.allowed("encounter")
            wanted = visit(entry.resource)
            attending = wanted.attending or self.attending
            if attending is None:
                raise Unmappable("an Encounter needs an attending physician (a participant)")
            start = StartEncounter(patient_id, wanted.encounter_class, self.ward, attending)
            started = self.steps.run(
                entry, "start", lambda c: self.store.start_encounter(c, start), wanted.start
            )
        except (Unmappable, Refused) as exc:
            status = exc.status if isinstance(exc, Refused) else 422
            reason = exc.reason if isinstance(exc, Refused) else str(exc)
            self.refuse(entry, reason, status)
        for work in item.work:
            self._work(patient_id, work)
        if started is None:
            return
        results = [started]
        if wanted.end is not None:
            end = EndEncounter(started.id, wanted.disposition)
            try:
                results.append(
                    self.steps.run(
                        entry, "end", lambda c: self.store.end_encounter(c, end), wanted.end
                    )
                )
            except Refused as exc:
                self.refuse(entry, f"started, but not ended: {exc.reason}", exc.status)
                return
        self.done(entry, results)

    def _work(self, patient_id: UUID, work: Work) -> None:
        try:
            self.allowed(work.kind)
        except Refused as exc:
            for entry in {e.index: e for e in [work.entry, *work.results]}.values():
                self.refuse(entry, exc.reason, exc.status)
            return
        for entry, outcome in run_work(self.steps, patient_id, work):
            if isinstance(outcome, Line):
                self.line(outcome)
            elif isinstance(outcome, Refused):
                self.refuse(entry, outcome.reason, outcome.status)
            elif isinstance(outcome, Unmappable):
                self.refuse(entry, str(outcome))
            else:
                results, notes = outcome
                self.done(entry, results, notes)


def subject_of(entry: Entry) -> str | None:
    """The patient reference of a clinical resource."""
    return reference(entry.resource.get("subject") or entry.resource.get("patient"))
