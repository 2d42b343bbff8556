"""The store core: the ``eventsourcing`` application every command runs on.

``StoreCore.execute`` takes a command's decision (given ``now``), replays an idempotent
repeat, wraps the decided payloads in envelopes (actor, both times, reason, correlation
and causation ids) and saves them in one transaction, or adds them to the current import
batch. It also chooses the recorder and mapper, keeps hashed ids, and gives the
composition root the store's persistence services (its log, chain verifier, channel).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool

from events.commands.base import CommandContext, CommandCore, CommandResult, Outcome, Pending
from events.domain.aggregates import patients
from events.domain.aggregates.common import Evolve, fold
from events.domain.clinical_time import clinical_time
from events.domain.contract import spec_of
from events.domain.envelope import ClinicalEvent
from events.domain.errors import (
    ClinicalRuleViolation,
    ConflictError,
    PatientErasedError,
)
from events.domain.payloads.patients import PatientRegistered
from events.domain.text import NOTE_LIMIT, TextRefused, clean_text
from events.store.connect import CONNECT_ARGS, add_connect_args
from events.store.idempotency import KeysInFlight, replayed
from events.store.keys import OPERATIONS_KEY_ID, Keyring, derive_key
from events.store.log import EventLog
from events.store.mapper import ClinicalMapper, ErasedEventError, key_id_for
from events.store.payload_keys import PayloadKeys
from events.store.recorders import (
    ClinicalMemoryRecorder,
    ClinicalPostgresRecorder,
    IdempotencyClaim,
    JsonDict,
)
from events.store.verification import ChainVerifier
from events.store.witness import Witness

log = logging.getLogger(__name__)
S = TypeVar("S")
Clock = Callable[[], datetime]
IdFactory = Callable[[], UUID]


def _reason(reason: str | None) -> str | None:
    """A reason as stored: a free-text note, or None when blank."""
    if reason is None or not reason.strip():
        return None
    if len(reason) > NOTE_LIMIT:
        raise ClinicalRuleViolation(
            f"reason is longer than {NOTE_LIMIT} characters", field="reason"
        )
    try:
        return clean_text(reason.strip(), multiline=True)
    except TextRefused as exc:
        raise ClinicalRuleViolation(f"reason: {exc}", field="reason") from None


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


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
# The states the command being decided has loaded, so that it reads each stream once.
_DECIDING: ContextVar[dict[tuple[UUID, Any], Any] | None] = ContextVar("deciding", default=None)


class StoreCore(Application[UUID], CommandCore):
    """The event-sourced application under every command: persistence, idempotency,
    envelopes, import batches. The command areas of ``events.application`` sit on it."""

    name = "clinical"

    def __init__(
        self,
        env: dict[str, str],
        keyring: Keyring,
        id_key: bytes,
        clock: Clock = utc_now,
        new_id: IdFactory = uuid4,
        name: str = "clinical",
    ) -> None:
        self.name = name  # names the PostgreSQL table: <name>_events
        self.keyring = keyring
        self.clock = clock
        self.new_id = new_id
        # The key of hashed ids has its own file (``ensure_id_key``): never the master key,
        # which rotates.
        self._id_key = id_key
        self._keys_in_flight = KeysInFlight()
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
            add_connect_args(self.factory, self.env.get(CONNECT_ARGS, ""))  # TLS: sslmode…
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
        """Index what an older version stored without the patient index (idempotent). The
        hash chain is never rebuilt here: a store without one is reported, and only the
        explicit, witnessed ``backbone verify --chain-existing`` chains it."""
        if self.on_postgres:
            self._postgres().backfill_patient_index()
            if self._postgres().unchained():
                log.error(
                    "the store holds events but no hash chain; `backbone verify` will report "
                    "it BROKEN (a store never chained: `backbone verify --chain-existing`)"
                )

    def chain_verifier(
        self, pool: ConnectionPool, key: Ed25519PrivateKey, witness: Witness | None = None
    ) -> ChainVerifier:
        """Checks this store's hash chains and signs their head, in the database and in the
        witness outside it (PostgreSQL only)."""
        return ChainVerifier(self._postgres(), pool, key, witness)

    @property
    def commit_channel(self) -> str:
        """The channel every commit NOTIFYs (PostgreSQL only)."""
        return self._postgres().channel_name

    def group_commit_totals(self) -> tuple[int, int]:
        """(transactions, commands) written by group commit so far (PostgreSQL only)."""
        group = self._postgres().group_commit
        return group.batches, group.items

    # -- plumbing --------------------------------------------------------------------------
    def keyed_id(self, natural_key: bytes) -> UUID:
        """A stable, non-reversible id for a natural key, under the store's own key."""
        digest = hmac.new(self._id_key, natural_key, hashlib.sha256).digest()
        raw = bytearray(digest[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # RFC 9562 version 8 (custom)
        raw[8] = (raw[8] & 0x3F) | 0x80
        return UUID(bytes=bytes(raw))

    def load(self, stream_id: UUID, evolve: Evolve[S]) -> S | None:
        """The current state of a stream, or None if it has no events.

        While a command is decided, and inside an import batch, a stream is read once: the
        command or batch sees one snapshot of what it reads (what it writes is still checked
        against the store's versions when saved)."""
        batch = _IMPORTING.get()
        loaded = batch.loaded if batch is not None else _DECIDING.get()
        if loaded is None:
            return self._load(stream_id, evolve)
        if (stream_id, evolve) not in loaded:
            loaded[(stream_id, evolve)] = self._load(stream_id, evolve)
        state: S | None = loaded[(stream_id, evolve)]
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

    def _idempotency_key(self, ctx: CommandContext) -> str | None:
        if ctx.idempotency_key is None:
            return None
        return f"{ctx.actor.user_id}:{ctx.idempotency_key}"

    def _envelope(
        self, item: Pending, ctx: CommandContext, now: datetime, correlation_id: UUID
    ) -> ClinicalEvent:
        occurred_at = clinical_time(ctx.occurred_at or now, now, self._birth_date(item))
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
            occurred_at=occurred_at,
            actor=ctx.actor,
            reason=_reason(ctx.reason),
            correlation_id=correlation_id,
            causation_id=ctx.causation_id,
            payload=item.payload,
        )

    def _birth_date(self, item: Pending) -> date | None:
        """The birth date of the event's patient: nothing clinical happens before it."""
        if isinstance(item.payload, PatientRegistered):
            return item.payload.birth_date
        if item.patient_id is None:
            return None
        try:
            patient = self.load(item.patient_id, patients.evolve)
        except PatientErasedError:
            return None
        return patient.birth_date if patient is not None else None

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
            return replayed(prior, ctx)
        with self._keys_in_flight.hold(key):
            return self._decide_and_save(ctx, decide, key)

    def _decide_and_save(
        self, ctx: CommandContext, decide: Callable[[datetime], Outcome], key: str | None
    ) -> CommandResult:
        outcome, events = self._decide(ctx, decide)
        result = CommandResult(outcome.result_id, 0, outcome.detail)
        claimed = {**result.to_json(), "request": ctx.request}
        claim = IdempotencyClaim(key, claimed) if key is not None else None
        try:
            recordings = self.save(*events, idempotency=claim)
        except IntegrityError as exc:
            if key is not None and (prior := self.clinical_recorder.claimed_result(key)):
                return replayed(prior, ctx)
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
        # One command reads each stream once (its decision and its checks share the state).
        token = _DECIDING.set({}) if _DECIDING.get() is None else None
        try:
            outcome = decide(now)
            correlation_id = ctx.correlation_id or self.new_id()
            events = [self._envelope(i, ctx, now, correlation_id) for i in outcome.pending]
        finally:
            if token is not None:
                _DECIDING.reset(token)
        return outcome, events

    def destroy_key(self, patient_id: UUID) -> None:
        self.keyring.destroy(patient_id)

    def erasure_position(self, patient_id: UUID) -> int:
        """The position of the patient's ``patient.erased`` (its header stays readable), or
        the head if it cannot be found: either way a reader waiting for it sees it."""
        for logged in reversed(self.event_log.of_patient(patient_id)):
            if logged.event_type == "patient.erased":
                return logged.position
        return self.event_log.head()

    def service_key(self, purpose: bytes) -> bytes:
        """A 256-bit key for a service's own secrets (TOTP secrets, say): HKDF-SHA256 of the
        store's operations data key under the purpose label. That key is random, wrapped by
        the master key, shared by every process of the store and never destroyed, so callers
        never see the keyring."""
        return derive_key(self.keyring.key_for_writing(OPERATIONS_KEY_ID), purpose)

    @property
    def payload_keys(self) -> PayloadKeys:
        """The keys of payloads on Kafka: the relay seals with them, the key service serves them."""
        return PayloadKeys(self.keyring, self.name)

    def patient_key(self, patient_id: UUID, purpose: bytes, *, writing: bool = False) -> bytes:
        """A subkey of one patient's data key for a service's copies of that patient's data
        (a refused HL7 message, say): destroyed with the patient's key at erasure. Raises
        ``PatientErasedError`` once the key is gone; ``writing`` creates the key if needed."""
        keyring = self.keyring
        read = keyring.key_for_writing if writing else keyring.key_for_reading
        return derive_key(read(patient_id), purpose)

    # -- reading the log -------------------------------------------------------------------
    def events_of(self, stream_id: UUID) -> Iterable[ClinicalEvent]:
        """Every event of one stream, oldest first (decrypted, upcast)."""
        return self.events.get(stream_id)  # type: ignore[return-value]
