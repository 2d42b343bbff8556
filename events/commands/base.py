"""What every command shares: its context, its answer, and the one load-decide-append step.

A command area (patients, orders, medications, ...) is a mixin over ``CommandCore``. The
store implements the core: ``execute`` (idempotency, envelopes, saving, import batches),
``load`` and the keyed ids. ``change`` is the step every command is made of: load one
stream's state, let a pure decision turn it into a payload, append it as the stream's next
version. Commands never read the clock or make ids of their own: ``now`` comes from
``execute`` and ids from ``new_id``.
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from events.domain.aggregates import patients
from events.domain.aggregates.common import Evolve
from events.domain.envelope import Actor
from events.domain.errors import DomainError
from events.domain.payloads.base import Payload

JsonDict = dict[str, Any]
Guard = Callable[[UUID], object]


class Versioned(Protocol):
    """An aggregate state: the version of the last event folded into it."""

    @property
    def version(self) -> int: ...


class PatientRecord(Versioned, Protocol):
    """An aggregate state that belongs to one patient (an order, a prescription)."""

    @property
    def patient_id(self) -> UUID: ...


S = TypeVar("S")
R = TypeVar("R", bound=PatientRecord)
V = TypeVar("V", bound=Versioned | None)
P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class CommandContext:
    """Who sends a command, why, when it happened clinically, and how it relates to others.

    ``guard``, when set, is called with the patient id a command touches once the command
    knows it (from its input, or from the order it loaded) and before it decides: the API
    passes its access check, so an aggregate needed for both is loaded once. ``request`` is
    the fingerprint of the command an idempotency key was sent with (set by ``@command``):
    the same key with another request is refused, never answered with the first result."""

    actor: Actor
    reason: str | None = None
    occurred_at: datetime | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    idempotency_key: str | None = None
    guard: Guard | None = None
    request: str | None = None


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


Self_ = TypeVar("Self_")
Input = TypeVar("Input")
Answer = TypeVar("Answer")


def fingerprint(name: str, cmd: object, ctx: CommandContext) -> str:
    """What a command asked for: its name, its input and its context's reason and time."""
    text = f"{name}|{cmd!r}|{ctx.reason!r}|{ctx.occurred_at!r}"
    return hashlib.sha256(text.encode()).hexdigest()


def command(
    method: Callable[[Self_, CommandContext, Input], Answer],
) -> Callable[[Self_, CommandContext, Input], Answer]:
    """Marks a command method: a context with an idempotency key gets the request's
    fingerprint, so that a key reused for another request is detected."""

    @functools.wraps(method)
    def run(self: Self_, ctx: CommandContext, cmd: Input) -> Answer:
        if ctx.idempotency_key is not None and ctx.request is None:
            ctx = replace(ctx, request=fingerprint(method.__name__, cmd, ctx))
        return method(self, ctx, cmd)

    return run


def no_detail(_: Payload) -> JsonDict:
    return {}


class CommandCore(ABC):
    """What command areas need from the store, and the step they are all made of."""

    new_id: Callable[[], UUID]

    @abstractmethod
    def execute(self, ctx: CommandContext, decide: Callable[[datetime], Outcome]) -> CommandResult:
        """Replay an idempotent repeat, or decide (given ``now``), wrap and save atomically."""

    @abstractmethod
    def load(self, stream_id: UUID, evolve: Evolve[S]) -> S | None:
        """The current state of a stream, or None if it has no events."""

    @abstractmethod
    def keyed_id(self, natural_key: bytes) -> UUID:
        """A stable, non-reversible id for a natural key (an MRN, a username)."""

    @abstractmethod
    def destroy_key(self, patient_id: UUID) -> None:
        """Destroy a patient's data key: their events become unreadable for good."""

    def patient(self, patient_id: UUID) -> patients.Patient:
        """The patient's current state, or NotFound / PatientErasedError."""
        return patients.require_patient(self.load(patient_id, patients.evolve), patient_id)

    def change(
        self,
        ctx: CommandContext,
        stream_id: UUID,
        load: Callable[[], V],
        decide: Callable[[V, datetime], P],
        patient: UUID | Callable[[V], UUID | None] | None,
        *,
        result_id: UUID | None = None,
        detail: Callable[[P], JsonDict] = no_detail,
        on_conflict: DomainError | None = None,
    ) -> CommandResult:
        """Load a stream's state, guard its patient, decide, and append the next version.

        ``patient`` is the patient id when the input names it (the guard then runs before
        anything is loaded, so a stranger learns nothing), or how to read it off the state
        (an order's patient: the guard runs once it is loaded)."""

        def outcome(now: datetime) -> Outcome:
            named = None if callable(patient) else patient
            if ctx.guard is not None and named is not None:
                ctx.guard(named)
            state = load()
            patient_id = patient(state) if callable(patient) else patient
            if ctx.guard is not None and named is None and patient_id is not None:
                ctx.guard(patient_id)
            payload = decide(state, now)
            version = state.version if state is not None else 0
            item = Pending(stream_id, version + 1, patient_id, payload)
            return Outcome(result_id or stream_id, [item], detail(payload), on_conflict)

        return self.execute(ctx, outcome)

    def change_record(
        self,
        ctx: CommandContext,
        stream_id: UUID,
        load: Callable[[UUID], R],
        decide: Callable[[R, datetime], P],
        *,
        result_id: UUID | None = None,
        detail: Callable[[P], JsonDict] = no_detail,
    ) -> CommandResult:
        """``change`` of a record that names its patient: guarded once it is loaded."""
        return self.change(
            ctx,
            stream_id,
            lambda: load(stream_id),
            decide,
            lambda record: record.patient_id,
            result_id=result_id,
            detail=detail,
        )

    def start(
        self,
        ctx: CommandContext,
        stream_id: UUID,
        patient_id: UUID | None,
        decide: Callable[[datetime], P],
        *,
        result_id: UUID | None = None,
        detail: Callable[[P], JsonDict] = no_detail,
        on_conflict: DomainError | None = None,
    ) -> CommandResult:
        """Append the first event of a new stream."""
        return self.change(
            ctx,
            stream_id,
            lambda: None,
            lambda _, now: decide(now),
            patient_id,
            result_id=result_id,
            detail=detail,
            on_conflict=on_conflict,
        )
