"""The clinical event store: the only write API of the backbone.

``ClinicalStore`` is an ``eventsourcing`` application. Each command loads the aggregates it
needs, asks the pure decision functions of ``events.domain.aggregates`` what happened, wraps the
payloads in envelopes (actor, both times, reason, correlation and causation ids) and saves
them in one transaction. Commands return the new id and the store position.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool

from events.domain.aggregates import access, medications, observations, orders, patients, users
from events.domain.aggregates.common import Evolve, fold, require_reason
from events.domain.contract import spec_of
from events.domain.envelope import SYSTEM_ACTOR, Actor, ClinicalEvent
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    DomainError,
    DuplicateMRN,
    NotFound,
    PatientErasedError,
)
from events.domain.payloads import access as acc
from events.domain.payloads import medications as m
from events.domain.payloads import patients as p
from events.domain.payloads.base import Payload
from events.store.keys import Keyring, derive_key
from events.store.log import EventLog
from events.store.mapper import ClinicalMapper, ErasedEventError, key_id_for
from events.store.recorders import (
    ClinicalMemoryRecorder,
    ClinicalPostgresRecorder,
    IdempotencyClaim,
    JsonDict,
)
from events.store.verification import ChainVerifier

S = TypeVar("S")
Clock = Callable[[], datetime]
IdFactory = Callable[[], UUID]
CLOCK_SKEW = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class CommandContext:
    """Who sends a command, why, when it happened clinically, and how it relates to others."""

    actor: Actor
    reason: str | None = None
    occurred_at: datetime | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command answers: the id it created or changed, and the store position."""

    id: UUID
    position: int
    detail: JsonDict = field(default_factory=dict)
    replayed: bool = False

    def to_json(self) -> JsonDict:
        return {"id": str(self.id), "detail": self.detail}

    @classmethod
    def from_claim(cls, claim: JsonDict) -> CommandResult:
        return cls(UUID(claim["id"]), int(claim["position"]), claim.get("detail", {}), True)


@dataclass(frozen=True)
class Pending:
    """An event a decision produced, before it gets its envelope."""

    stream_id: UUID
    version: int
    patient_id: UUID | None
    payload: Payload


@dataclass
class Outcome:
    """What a command decided: the events, the id to answer with, and extra detail."""

    result_id: UUID
    pending: list[Pending]
    detail: JsonDict = field(default_factory=dict)
    on_conflict: DomainError | None = None


@dataclass
class ImportBatch:
    """Commands decided one by one and saved together, in one transaction, all or none."""

    events: list[ClinicalEvent] = field(default_factory=list)
    outcomes: list[tuple[UUID, JsonDict, int]] = field(default_factory=list)
    streams: set[UUID] = field(default_factory=set)
    results: list[CommandResult] = field(default_factory=list)
    loaded: dict[tuple[UUID, Any], Any] = field(default_factory=dict)

    def add(self, outcome: Outcome, events: list[ClinicalEvent]) -> None:
        for event in events:
            if event.originator_id in self.streams:
                raise ConflictError(
                    "an import batch may change each record once; put later changes to the "
                    "same record in the next batch"
                )
        self.streams.update(e.originator_id for e in events)
        self.events.extend(events)
        self.outcomes.append((outcome.result_id, outcome.detail, len(events)))


# The import batch commands of this thread (or task) add to, instead of saving each.
_IMPORTING: ContextVar[ImportBatch | None] = ContextVar("importing", default=None)


class ClinicalStore(Application[UUID]):
    """The event-sourced application every write goes through."""

    name = "clinical"

    def __init__(
        self,
        env: dict[str, str],
        keyring: Keyring,
        master_key: bytes,
        clock: Clock = utc_now,
        new_id: IdFactory = uuid4,
        name: str = "clinical",
    ) -> None:
        self.name = name  # names the PostgreSQL table: <name>_events
        self.keyring = keyring
        self.clock = clock
        self.new_id = new_id
        self._mrn_key = derive_key(master_key, b"clinical-backbone/mrn-index")
        super().__init__(env)
        self.event_log = EventLog(self.clinical_recorder, self.clinical_mapper)

    # -- library extension points ----------------------------------------------------------
    def construct_mapper(self) -> Mapper[UUID]:
        return ClinicalMapper(self.keyring)

    def construct_recorder(self) -> ApplicationRecorder:
        if self.env.get("PERSISTENCE_MODULE", "") == "eventsourcing.postgres":
            db_functions = self.env.get("POSTGRES_ENABLE_DB_FUNCTIONS", "n").lower()
            if db_functions in ("y", "yes", "t", "true", "1"):
                # That mode bypasses the recorder hooks (idempotency claims) and the table lock.
                raise ValueError("POSTGRES_ENABLE_DB_FUNCTIONS must stay off for this store")
            self.env["APPLICATION_RECORDER_TOPIC"] = get_topic(ClinicalPostgresRecorder)
            return self.factory.application_recorder()
        return ClinicalMemoryRecorder()

    @property
    def clinical_recorder(self) -> ClinicalPostgresRecorder | ClinicalMemoryRecorder:
        recorder = self.recorder
        if not isinstance(recorder, ClinicalPostgresRecorder | ClinicalMemoryRecorder):
            raise TypeError(f"unexpected recorder {type(recorder).__name__}")
        return recorder

    @property
    def clinical_mapper(self) -> ClinicalMapper:
        mapper = self.mapper
        if not isinstance(mapper, ClinicalMapper):
            raise TypeError(f"unexpected mapper {type(mapper).__name__}")
        return mapper

    # -- persistence services for the composition root -----------------------------------
    def _postgres(self) -> ClinicalPostgresRecorder:
        recorder = self.clinical_recorder
        if not isinstance(recorder, ClinicalPostgresRecorder):
            raise TypeError("this needs the PostgreSQL store")
        return recorder

    @property
    def on_postgres(self) -> bool:
        return isinstance(self.clinical_recorder, ClinicalPostgresRecorder)

    def prepare(self) -> None:
        """Index and chain what an older version stored without them (idempotent)."""
        if self.on_postgres:
            self._postgres().backfill_patient_index()
            self._postgres().backfill_chain()

    def chain_verifier(self, pool: ConnectionPool, key: Ed25519PrivateKey) -> ChainVerifier:
        """Checks this store's hash chains and signs their head (PostgreSQL only)."""
        return ChainVerifier(self._postgres(), pool, key)

    @property
    def commit_channel(self) -> str:
        """The channel every commit NOTIFYs (PostgreSQL only)."""
        return self._postgres().channel_name

    def group_commit_totals(self) -> tuple[int, int]:
        """(transactions, commands) written by group commit so far (PostgreSQL only)."""
        group = self._postgres().group_commit
        return group.batches, group.items

    # -- plumbing --------------------------------------------------------------------------
    def patient_id_for_mrn(self, mrn: str) -> UUID:
        """A stable, non-reversible patient id for an MRN: the store's uniqueness key."""
        return self._keyed_id(mrn.strip().upper().encode())

    def _keyed_id(self, natural_key: bytes) -> UUID:
        digest = hmac.new(self._mrn_key, natural_key, hashlib.sha256).digest()
        raw = bytearray(digest[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # RFC 9562 version 8 (custom)
        raw[8] = (raw[8] & 0x3F) | 0x80
        return UUID(bytes=bytes(raw))

    def load(self, stream_id: UUID, evolve: Evolve[S]) -> S | None:
        """The current state of a stream, or None if it has no events.

        Inside an import batch a stream is read once: the batch sees one snapshot of what it
        reads (what it writes is still checked against the store's versions when saved)."""
        batch = _IMPORTING.get()
        if batch is None:
            return self._load(stream_id, evolve)
        if (stream_id, evolve) not in batch.loaded:
            batch.loaded[(stream_id, evolve)] = self._load(stream_id, evolve)
        state: S | None = batch.loaded[(stream_id, evolve)]
        return state

    def _load(self, stream_id: UUID, evolve: Evolve[S]) -> S | None:
        try:
            state: S = self.repository.get(  # type: ignore[type-var,assignment]
                stream_id, projector_func=fold(evolve)
            )
        except AggregateNotFoundError:
            return None
        except ErasedEventError as exc:
            raise PatientErasedError(exc.header.patient_id or stream_id) from exc
        return state

    def _patient(self, patient_id: UUID) -> patients.Patient:
        return patients.require_patient(self.load(patient_id, patients.evolve), patient_id)

    def _order(self, order_id: UUID) -> orders.LabOrder:
        state = self.load(order_id, orders.evolve)
        if state is None:
            raise NotFound("lab order", order_id)
        return state

    def _medication(self, medication_id: UUID) -> medications.MedicationOrder:
        state = self.load(medication_id, medications.evolve)
        if state is None:
            raise NotFound("medication order", medication_id)
        return state

    def _idempotency_key(self, ctx: CommandContext) -> str | None:
        if ctx.idempotency_key is None:
            return None
        return f"{ctx.actor.user_id}:{ctx.idempotency_key}"

    def _envelope(
        self, item: Pending, ctx: CommandContext, now: datetime, correlation_id: UUID
    ) -> ClinicalEvent:
        occurred_at = ctx.occurred_at or now
        if occurred_at.tzinfo is None:
            raise ClinicalRuleViolation("occurred_at needs a time zone", field="occurred_at")
        if occurred_at > now + CLOCK_SKEW:
            raise ClinicalRuleViolation("occurred_at is in the future", field="occurred_at")
        payload_type = type(item.payload)
        spec = spec_of(payload_type.event_type)
        if payload_type is not spec.current:
            raise TypeError(f"{payload_type.__name__} is not the current payload version")
        return ClinicalEvent(
            originator_id=item.stream_id,
            originator_version=item.version,
            timestamp=now,
            event_id=self.new_id(),
            event_type=payload_type.event_type,
            schema_version=payload_type.schema_version,
            patient_id=item.patient_id,
            occurred_at=occurred_at.astimezone(UTC),
            actor=ctx.actor,
            reason=ctx.reason.strip() if ctx.reason and ctx.reason.strip() else None,
            correlation_id=correlation_id,
            causation_id=ctx.causation_id,
            payload=item.payload,
        )

    @contextmanager
    def importing(self) -> Iterator[ImportBatch]:
        """Bulk import: commands sent inside the block are checked and decided as usual but
        saved together when it ends (their ``results`` then carry positions). An error
        anywhere, a refused command or a conflict saves nothing."""
        if _IMPORTING.get() is not None:
            raise RuntimeError("import batches do not nest")
        batch = ImportBatch()
        token = _IMPORTING.set(batch)
        try:
            yield batch
        finally:
            _IMPORTING.reset(token)
        if not batch.events:
            return
        try:
            with self.keyring.writing({key_id_for(e) for e in batch.events}):
                recordings = self.save(*batch.events)
        except IntegrityError as exc:
            raise ConflictError(
                "a record in the batch was changed meanwhile (or a patient registered twice); "
                "nothing was imported"
            ) from exc
        ids = iter(r.notification.id for r in recordings)
        for result_id, detail, count in batch.outcomes:
            position = max(next(ids) for _ in range(count)) if count else 0
            batch.results.append(CommandResult(result_id, position, detail))

    def execute(self, ctx: CommandContext, decide: Callable[[datetime], Outcome]) -> CommandResult:
        """Run a command: replay an idempotent repeat, or decide, wrap and save atomically."""
        importing = _IMPORTING.get()
        if importing is not None:
            return self._decide_into(importing, ctx, decide)
        key = self._idempotency_key(ctx)
        if key is not None and (prior := self.clinical_recorder.claimed_result(key)) is not None:
            return CommandResult.from_claim(prior)
        outcome, events = self._decide(ctx, decide)
        result = CommandResult(outcome.result_id, 0, outcome.detail)
        claim = IdempotencyClaim(key, result.to_json()) if key is not None else None
        try:
            recordings = self.save(*events, idempotency=claim)
        except IntegrityError as exc:
            if key is not None and (prior := self.clinical_recorder.claimed_result(key)):
                return CommandResult.from_claim(prior)
            raise outcome.on_conflict or ConflictError(
                "another change to the same record was saved first; reload and retry"
            ) from exc
        position = max(r.notification.id for r in recordings)
        return CommandResult(outcome.result_id, position, outcome.detail)

    def _decide_into(
        self, batch: ImportBatch, ctx: CommandContext, decide: Callable[[datetime], Outcome]
    ) -> CommandResult:
        if ctx.idempotency_key is not None:
            raise ValueError("import batches are atomic; idempotency keys do not apply")
        outcome, events = self._decide(ctx, decide)
        batch.add(outcome, events)
        return CommandResult(outcome.result_id, 0, outcome.detail)

    def _decide(
        self, ctx: CommandContext, decide: Callable[[datetime], Outcome]
    ) -> tuple[Outcome, list[ClinicalEvent]]:
        now = self.clock()
        outcome = decide(now)
        correlation_id = ctx.correlation_id or self.new_id()
        return outcome, [self._envelope(i, ctx, now, correlation_id) for i in outcome.pending]

    def _one(
        self,
        ctx: CommandContext,
        decide: Callable[[datetime], Pending],
        result_id: UUID | None = None,
    ) -> CommandResult:
        def outcome(now: datetime) -> Outcome:
            item = decide(now)
            return Outcome(result_id or item.stream_id, [item])

        return self.execute(ctx, outcome)

    # -- patients --------------------------------------------------------------------------
    def register_patient(
        self, ctx: CommandContext, registration: p.PatientRegistered
    ) -> CommandResult:
        patient_id = self.patient_id_for_mrn(registration.mrn)

        def decide(now: datetime) -> Outcome:
            existing = self._existing(patient_id)
            payload = patients.register(patient_id, existing, registration, now.date())
            return Outcome(
                patient_id,
                [Pending(patient_id, 1, patient_id, payload)],
                on_conflict=DuplicateMRN(patient_id),
            )

        return self.execute(ctx, decide)

    def _existing(self, patient_id: UUID) -> patients.Patient | None:
        try:
            return self.load(patient_id, patients.evolve)
        except PatientErasedError:
            raise DuplicateMRN(patient_id) from None

    def update_demographics(
        self, ctx: CommandContext, patient_id: UUID, changes: p.DemographicsUpdated
    ) -> CommandResult:
        def decide(now: datetime) -> Pending:
            patient = self._patient(patient_id)
            payload = patients.update_demographics(patient, changes, now.date())
            return Pending(patient_id, patient.version + 1, patient_id, payload)

        return self._one(ctx, decide)

    def record_allergy(
        self,
        ctx: CommandContext,
        patient_id: UUID,
        substance: str,
        reaction: str,
        severity: str,
        substance_code: str | None = None,
    ) -> CommandResult:
        allergy_id = self.new_id()

        def decide(_: datetime) -> Pending:
            patient = self._patient(patient_id)
            allergy = p.AllergyRecorded.model_validate(
                {
                    "allergy_id": allergy_id,
                    "substance": substance,
                    "substance_code": substance_code,
                    "reaction": reaction,
                    "severity": severity,
                }
            )
            payload = patients.record_allergy(patient, allergy)
            return Pending(patient_id, patient.version + 1, patient_id, payload)

        return self._one(ctx, decide, result_id=allergy_id)

    def refute_allergy(
        self, ctx: CommandContext, patient_id: UUID, allergy_id: UUID
    ) -> CommandResult:
        def decide(_: datetime) -> Pending:
            patient = self._patient(patient_id)
            payload = patients.refute_allergy(patient, allergy_id, ctx.reason)
            return Pending(patient_id, patient.version + 1, patient_id, payload)

        return self._one(ctx, decide, result_id=allergy_id)

    def forget(self, ctx: CommandContext, patient_id: UUID, legal_basis: str) -> CommandResult:
        """Erase a patient: record ``patient.erased``, then destroy their data key."""
        require_reason(ctx.reason, "erase a patient")
        try:
            self.load(patient_id, patients.evolve)
        except PatientErasedError:
            # Erased before, perhaps interrupted before the key went: finish the job.
            self.keyring.destroy(patient_id)
            raise

        def decide(_: datetime) -> Pending:
            patient = self._patient(patient_id)
            payload = p.PatientErased(legal_basis=legal_basis)
            return Pending(patient_id, patient.version + 1, patient_id, payload)

        result = self._one(ctx, decide)
        self.keyring.destroy(patient_id)
        return result

    def request_erasure(
        self, ctx: CommandContext, patient_id: UUID, legal_basis: str
    ) -> tuple[CommandResult, bool]:
        """Two-person erasure: the first call records the request; a call by another user
        carries it out. (result, erased) — erased is False while it waits for a second person.
        """
        require_reason(ctx.reason, "erase a patient")
        stream = access.erasure_id(patient_id)
        self._patient(patient_id)
        pending = self.load(stream, access.evolve_erasure)
        if pending is not None and pending.requested_by != ctx.actor.user_id:
            basis = f"{pending.legal_basis} (requested {pending.request_id}, approved)"
            return self.forget(ctx, patient_id, basis), True
        if pending is not None:
            raise ConflictError("the erasure was requested by you: a second person must approve it")
        request_id = self.new_id()

        def decide(_: datetime) -> Pending:
            payload = p.ErasureRequested(request_id=request_id, legal_basis=legal_basis)
            return Pending(stream, 1, patient_id, payload)

        return self._one(ctx, decide, result_id=request_id), False

    # -- lab orders ------------------------------------------------------------------------
    def place_order(
        self,
        ctx: CommandContext,
        patient_id: UUID,
        test_code: str,
        test_name: str,
        priority: str,
    ) -> CommandResult:
        order_id = self.new_id()

        def decide(_: datetime) -> Pending:
            self._patient(patient_id)
            payload = orders.place(test_code, test_name, priority, ctx.actor.user_id)
            return Pending(order_id, 1, patient_id, payload)

        return self._one(ctx, decide)

    def collect_specimen(
        self,
        ctx: CommandContext,
        order_id: UUID,
        collected_at: datetime | None = None,
        specimen_type: str | None = None,
    ) -> CommandResult:
        def decide(now: datetime) -> Pending:
            order = self._order(order_id)
            payload = orders.collect_specimen(order, collected_at or now, now, specimen_type)
            return Pending(order_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide)

    def receive_results(
        self, ctx: CommandContext, order_id: UUID, analytes: list[orders.AnalyteInput]
    ) -> CommandResult:
        result_ids = [self.new_id() for _ in analytes]

        def decide(_: datetime) -> Outcome:
            order = self._order(order_id)
            payload = orders.receive_results(order, analytes, result_ids)
            detail = {
                "results": [
                    {"result_id": str(r.result_id), "code": r.code, "flag": r.flag}
                    for r in payload.results
                ]
            }
            return Outcome(
                order_id, [Pending(order_id, order.version + 1, order.patient_id, payload)], detail
            )

        return self.execute(ctx, decide)

    def amend_result(
        self, ctx: CommandContext, order_id: UUID, result_id: UUID, corrected: orders.AnalyteInput
    ) -> CommandResult:
        def decide(_: datetime) -> Outcome:
            order = self._order(order_id)
            payload = orders.amend_result(order, result_id, corrected, ctx.reason)
            item = Pending(order_id, order.version + 1, order.patient_id, payload)
            return Outcome(result_id, [item], {"flag": payload.flag})

        return self.execute(ctx, decide)

    def acknowledge_result(
        self, ctx: CommandContext, order_id: UUID, result_id: UUID
    ) -> CommandResult:
        def decide(_: datetime) -> Pending:
            order = self._order(order_id)
            payload = orders.acknowledge(order, result_id)
            return Pending(order_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide, result_id=result_id)

    def cancel_order(self, ctx: CommandContext, order_id: UUID) -> CommandResult:
        def decide(_: datetime) -> Pending:
            order = self._order(order_id)
            payload = orders.cancel(order, ctx.reason)
            return Pending(order_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide)

    # -- medications -----------------------------------------------------------------------
    def prescribe(
        self, ctx: CommandContext, patient_id: UUID, request: dict[str, Any]
    ) -> CommandResult:
        medication_id = self.new_id()

        def decide(_: datetime) -> Outcome:
            patient = self._patient(patient_id)
            wanted = m.MedicationPrescribed.model_validate(
                {**request, "prescriber": ctx.actor.user_id}
            )
            payload = medications.prescribe(patient, wanted)
            item = Pending(medication_id, 1, patient_id, payload)
            return Outcome(
                medication_id, [item], {"alerts_overridden": list(payload.alerts_overridden)}
            )

        return self.execute(ctx, decide)

    def change_medication(
        self, ctx: CommandContext, medication_id: UUID, request: dict[str, Any]
    ) -> CommandResult:
        def decide(_: datetime) -> Pending:
            order = self._medication(medication_id)
            self._patient(order.patient_id)
            wanted = m.MedicationChanged.model_validate(request)
            payload = medications.change(order, wanted, ctx.reason)
            return Pending(medication_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide)

    def discontinue_medication(self, ctx: CommandContext, medication_id: UUID) -> CommandResult:
        def decide(_: datetime) -> Pending:
            order = self._medication(medication_id)
            payload = medications.discontinue(order, ctx.reason)
            return Pending(medication_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide)

    def record_administration(
        self, ctx: CommandContext, medication_id: UUID, request: dict[str, Any]
    ) -> CommandResult:
        administration_id = self.new_id()

        def decide(now: datetime) -> Pending:
            order = self._medication(medication_id)
            given = m.MedicationAdministered.model_validate(
                {
                    "route": order.route,
                    "dose_unit": order.dose_unit,
                    "administered_at": now,
                    **request,
                    "administration_id": administration_id,
                }
            )
            payload = medications.administer(order, given, now)
            return Pending(medication_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide, result_id=administration_id)

    def pharmacy_decision(
        self,
        ctx: CommandContext,
        medication_id: UUID,
        item_id: UUID,
        order_version: int,
        verified: bool,
    ) -> CommandResult:
        def decide(_: datetime) -> Pending:
            order = self._medication(medication_id)
            decision: m.PharmacyVerified | m.PharmacyRejected
            if verified:
                decision = m.PharmacyVerified(item_id=item_id, order_version=order_version)
            else:
                require_reason(ctx.reason, "reject a prescription")
                decision = m.PharmacyRejected(item_id=item_id, order_version=order_version)
            payload = medications.pharmacy_decision(order, order_version, decision)
            return Pending(medication_id, order.version + 1, order.patient_id, payload)

        return self._one(ctx, decide, result_id=item_id)

    # -- observations and access -----------------------------------------------------------
    def record_vitals(
        self, ctx: CommandContext, patient_id: UUID, values: dict[str, float | None]
    ) -> CommandResult:
        vitals_id = self.new_id()

        def decide(_: datetime) -> Outcome:
            self._patient(patient_id)
            payload = observations.record_vitals(values)
            return Outcome(
                vitals_id, [Pending(vitals_id, 1, patient_id, payload)], {"flags": payload.flags}
            )

        return self.execute(ctx, decide)

    def record_chart_view(
        self, ctx: CommandContext, patient_id: UUID, section: str, purpose: str, break_glass: bool
    ) -> CommandResult:
        view_id = self.new_id()
        payload = acc.ChartViewed.model_validate(
            {"section": section, "purpose": purpose, "break_glass": break_glass}
        )
        return self._one(ctx, lambda _: Pending(view_id, 1, patient_id, payload))

    def grant_break_glass(
        self, ctx: CommandContext, patient_id: UUID, duration: timedelta
    ) -> CommandResult:
        """Emergency access for the actor to one patient, until ``now + duration``."""
        require_reason(ctx.reason, "break the glass")
        stream = access.break_glass_id(patient_id)

        def decide(now: datetime) -> Pending:
            self._patient(patient_id)
            grants = self.load(stream, access.evolve_break_glass)
            payload = acc.BreakGlassGranted(expires_at=now + duration)
            return Pending(stream, (grants.version if grants else 0) + 1, patient_id, payload)

        return self._one(ctx, decide)

    def change_care_team(
        self, ctx: CommandContext, patient_id: UUID, user_id: UUID, change: str
    ) -> CommandResult:
        stream = access.care_team_id(patient_id)

        def decide(_: datetime) -> Pending:
            self._patient(patient_id)
            team = self.load(stream, access.evolve_care_team)
            payload = access.change_care_team(team, user_id, change)
            return Pending(stream, (team.version if team else 0) + 1, patient_id, payload)

        return self._one(ctx, decide)

    def may_access(self, user_id: UUID, patient_id: UUID) -> tuple[bool, bool]:
        """(allowed, through break-glass) for a user and a patient, from the store."""
        team = self.load(access.care_team_id(patient_id), access.evolve_care_team)
        if team is not None and user_id in team.members:
            return True, False
        grants = self.load(access.break_glass_id(patient_id), access.evolve_break_glass)
        if grants is not None and grants.active_for(user_id, self.clock()):
            return True, True
        return False, False

    # -- users and logins ------------------------------------------------------------------
    def user_id_for(self, username: str) -> UUID:
        """A stable user id per username: the store itself keeps usernames unique."""
        return self._keyed_id(b"user:" + username.strip().lower().encode())

    def create_user(
        self, ctx: CommandContext, username: str, display_name: str, role: str
    ) -> CommandResult:
        user_id = self.user_id_for(username)
        request = acc.UserCreated.model_validate(
            {"username": username, "display_name": display_name, "role": role}
        )

        def decide(_: datetime) -> Outcome:
            payload = users.create(user_id, self.load(user_id, users.evolve), request)
            return Outcome(
                user_id,
                [Pending(user_id, 1, None, payload)],
                on_conflict=users.DuplicateUsername(user_id),
            )

        return self.execute(ctx, decide)

    def change_user_role(self, ctx: CommandContext, user_id: UUID, role: str) -> CommandResult:
        def decide(_: datetime) -> Pending:
            user = self.load(user_id, users.evolve)
            if user is None:
                raise NotFound("user", user_id)
            return Pending(user_id, user.version + 1, None, users.change_role(user, role))

        return self._one(ctx, decide)

    def record_login_failure(self, username: str, attempt: int) -> CommandResult:
        payload = acc.LoginFailed(username=username, attempt=attempt)
        stream = self.new_id()
        ctx = CommandContext(actor=SYSTEM_ACTOR)
        return self._one(ctx, lambda _: Pending(stream, 1, None, payload))

    def record_lockout(self, username: str, until: datetime) -> CommandResult:
        payload = acc.LockedOut(username=username, until=until)
        stream = self.new_id()
        ctx = CommandContext(actor=SYSTEM_ACTOR)
        return self._one(ctx, lambda _: Pending(stream, 1, None, payload))

    # -- reading the log -------------------------------------------------------------------
    def events_of(self, stream_id: UUID) -> Iterable[ClinicalEvent]:
        """Every event of one stream, oldest first (decrypted, upcast)."""
        return self.events.get(stream_id)  # type: ignore[return-value]
