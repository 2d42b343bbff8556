"""One message in, one ACK out: the synchronous path the listener and ``hl7 replay`` share.

A message with a parseable header that was answered before gets the stored ACK. Otherwise
it is translated and applied through the store's commands, under the sender's principal
(role ``interface``) and an idempotency key made of the sender and MSH-10 (the translation
adds a step index per command): a retry after a crash between the commands and the ACK
replays them instead of writing twice. A refusal, a domain error or an unexpected error is
answered ``AE``/``AR`` and the message kept with its reason; when the store or its
database is unreachable, nothing is answered (``Unavailable``) so that the sender resends.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hl7  # type: ignore[import-untyped, unused-ignore]
import psycopg
import psycopg_pool
from eventsourcing import persistence
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.domain.envelope import Actor
from events.domain.errors import (
    ConflictError,
    DomainError,
    DuplicateMRN,
    IdempotencyKeyReused,
    NotFound,
    PatientErasedError,
    RequestInFlight,
)
from events.store.application import utc_now
from services.hl7.ack import Header, build_ack, check_header, error_code, read_header
from services.hl7.contract import AckCode, Refusal, Sender, Translation
from services.hl7.ledger import Answered, Ledger, Rejection, seal
from services.hl7.mllp import decode, segments_of
from services.hl7.settings import DEFAULT_TRANSLATOR

log = logging.getLogger(__name__)
Translator = Callable[[Any, Sender, ClinicalStore], Translation]
ROLE = "interface"
REASON_LIMIT = 500
GENERIC_REASON = (
    "the backbone could not apply the message (internal error); it is kept and can be replayed"
)
# The store or its database is out of reach: the message is neither applied nor refused.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    persistence.OperationalError,
    persistence.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)


class Unavailable(Exception):
    """The store cannot be reached: no ACK is answered, the sender will send again."""


def load_translator(topic: str) -> Translator:
    """The translation function named ``module:function`` (imported on first use)."""
    module, _, name = topic.partition(":")
    translator: Translator = getattr(importlib.import_module(module), name)
    return translator


@dataclass(frozen=True)
class Inbound:
    """A received message: its text (segments separated by CR), when, and its header."""

    text: str
    received_at: datetime
    header: Header | None

    @classmethod
    def of(cls, message: bytes, received_at: datetime) -> Inbound:
        text = segments_of(decode(message))
        return cls(text, received_at, read_header(text))

    def routing_key(self) -> str:
        """What orders the work: PID-3's first identifier and its assigning authority (one
        patient's messages go one after the other); else the message itself."""
        header = self.header
        if header is None:
            return ""
        for segment in self.text.split("\r"):
            if segment.startswith("PID" + header.separator):
                fields = segment.split(header.separator)
                if len(fields) > 3 and fields[3].strip():
                    repetition = header.encoding[1] if len(header.encoding) > 1 else "~"
                    cx = fields[3].split(repetition)[0].split(header.component)
                    authority = cx[3] if len(cx) > 3 else ""
                    return f"{cx[0].strip()}^{authority.strip()}"
                break
        return f"{header.sender.name}|{header.control_id}"


@dataclass(frozen=True)
class Prepared:
    """A message read and translated on arrival, or what refused it then."""

    inbound: Inbound
    header: Header | None  # None: refused before its header could be trusted
    translation: Translation | None
    failure: Exception | None

    def routing_key(self) -> str:
        """The translation's patient key; else what the raw message names."""
        if self.translation is not None and self.translation.patient_key:
            return self.translation.patient_key
        return self.inbound.routing_key() if self.header is not None else ""


@dataclass(frozen=True)
class Answer:
    """The ACK of a message and its code."""

    ack: bytes
    code: AckCode | str
    duplicate: bool = False


class Intake:
    """Applies messages to the store and records what it answered."""

    def __init__(
        self,
        store: ClinicalStore,
        ledger: Ledger,
        translator: Translator | None = None,
        *,
        application: str = "BACKBONE",
        clock: Callable[[], datetime] = utc_now,
        conflict_retries: int = 3,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self._translator = translator
        self.application = application
        self.clock = clock
        self.conflict_retries = conflict_retries
        self._principals: dict[str, Actor] = {}
        self._lock = threading.Lock()

    @property
    def translate(self) -> Translator:
        """The translation of messages (``services.hl7.translate`` unless one was given)."""
        if self._translator is None:
            self._translator = load_translator(DEFAULT_TRANSLATOR)
        return self._translator

    def principal(self, sender: Sender) -> Actor:
        """The system principal of a sending application and facility."""
        with self._lock:
            actor = self._principals.get(sender.name)
        if actor is None:
            user_id = self.store.keyed_id(f"hl7-sender:{sender.name}".encode())
            actor = Actor(user_id=user_id, role=ROLE)
            with self._lock:
                self._principals[sender.name] = actor
        return actor

    def prepare(self, inbound: Inbound) -> Prepared:
        """Read and translate a message as it arrives (no I/O: translations look the store
        up only in ``apply``), so that it can be queued behind its patient's earlier ones."""
        try:
            header = check_header(inbound.header)
            message = _parse(inbound.text)
        except Refusal as refusal:
            return Prepared(inbound, None, None, refusal)
        try:
            translation = self.translate(message, header.sender, self.store)
        except Exception as exc:  # answered when its turn comes, like a failure of apply
            return Prepared(inbound, header, None, exc)
        return Prepared(inbound, header, translation, None)

    def handle(self, prepared: Prepared, *, replay_of: int | None = None) -> Answer:
        """The ACK of a message: the stored one for a resend, else the outcome of applying
        it (recorded). ``replay_of`` names a kept message sent again by an operator: it is
        applied whatever was answered before, and its answer replaces the stored one."""
        try:
            return self._handle(prepared, replay_of)
        except INFRASTRUCTURE_ERRORS as exc:
            raise Unavailable(type(exc).__name__) from exc

    def _handle(self, prepared: Prepared, replay_of: int | None) -> Answer:
        inbound, header = prepared.inbound, prepared.header
        if header is None:
            refusal = prepared.failure
            assert isinstance(refusal, Refusal)  # noqa: S101 - prepare refuses without a header
            return self._answer(inbound, inbound.header, refusal, replay_of)
        if replay_of is None:
            prior = self.ledger.answered(header.sender.name, header.control_id)
            if prior is not None:
                return Answer(prior, _code_of(prior), duplicate=True)
        try:
            if prepared.failure is not None:
                raise prepared.failure
            if prepared.translation is not None:
                self._apply(prepared.translation, header)
        except Refusal as refusal:
            return self._answer(inbound, header, refusal, replay_of)
        except DomainError as exc:
            return self._answer(inbound, header, _domain_refusal(exc, header), replay_of)
        except ValidationError as exc:
            return self._answer(inbound, header, _invalid(exc), replay_of)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            # Kept and answered: the sender learns it failed, an operator can replay it.
            log.error(
                "hl7 message failed unexpectedly",
                exc_info=True,
                extra={"fields": _fields(header, error=type(exc).__name__)},
            )
            failed = Refusal("AE", "", GENERIC_REASON, error_code="207")
            return self._answer(inbound, header, failed, replay_of)
        return self._answer(inbound, header, None, replay_of)

    def _apply(self, translation: Translation, header: Header) -> None:
        sender = header.sender
        ctx = CommandContext(
            actor=self.principal(sender),
            reason=f"HL7 {header.message_type} {header.control_id}",
            correlation_id=self.store.keyed_id(
                f"hl7-message:{sender.name}:{header.control_id}".encode()
            ),
            idempotency_key=f"hl7:{header.control_id}",
        )
        for attempt in range(self.conflict_retries + 1):
            try:
                translation.apply(self.store, ctx)
                return
            except ConflictError as exc:
                # Another writer won a race on the same record: the idempotency keys make
                # applying again safe (what was saved replays).
                if type(exc) not in (ConflictError, RequestInFlight):
                    raise
                if attempt == self.conflict_retries:
                    raise
                time.sleep(0.02 * 2**attempt)

    def _answer(
        self,
        inbound: Inbound,
        header: Header | None,
        refusal: Refusal | None,
        replay_of: int | None,
    ) -> Answer:
        code: AckCode = refusal.code if refusal is not None else "AA"
        if refusal is not None and len(refusal.reason) > REASON_LIMIT:
            refusal = Refusal(
                refusal.code,
                refusal.location,
                refusal.reason[: REASON_LIMIT - 1] + "…",
                refusal.patient_id,
                error_code=refusal.error_code,
            )
        ack = build_ack(header, code, self.clock(), refusal, application=self.application)
        answered = None
        if header is not None and header.control_id and header.sending_application:
            answered = Answered(
                header.sender.name, header.control_id, header.message_type, code, ack
            )
        rejection = self._rejection(inbound, header, refusal) if refusal is not None else None
        if replay_of is not None:
            self.ledger.record_replay(replay_of, answered, rejection)
            stored = ack
        else:
            stored = self.ledger.record(answered, rejection) or ack
        # Refusals at info, acceptances at debug: one line per message is too many at load.
        level = logging.DEBUG if refusal is None else logging.INFO
        log.log(level, "hl7 message answered", extra={"fields": _fields(header, code=code)})
        return Answer(stored, _code_of(stored), duplicate=stored != ack)

    def _rejection(self, inbound: Inbound, header: Header | None, refusal: Refusal) -> Rejection:
        owner, sealed = seal(self.store, refusal.patient_id, inbound.text)
        return Rejection(
            received_at=inbound.received_at,
            sender=header.sender.name if header is not None else None,
            message_type=header.message_type if header is not None else None,
            control_id=header.control_id if header is not None else None,
            code=refusal.code,
            error_code=error_code(refusal),
            location=refusal.location,
            reason=refusal.reason,
            key_id=refusal.patient_id if sealed is not None else None,
            owner=owner,
            sealed=sealed,
        )


def _parse(text: str) -> Any:
    if not text.startswith("MSH"):
        raise Refusal("AR", "MSH-1", "not an HL7 v2 message: it must start with an MSH segment")
    try:
        return hl7.parse(text)
    except Exception:  # the parser fails in many ways (IndexError, ParseException, ...)
        raise Refusal("AR", "MSH-1", "the message could not be parsed as HL7 v2") from None


def _domain_refusal(exc: DomainError, header: Header) -> Refusal:
    if isinstance(exc, NotFound):
        location = "PID-3" if exc.kind == "patient" else ""
        return Refusal("AE", location, str(exc), error_code="204")
    if isinstance(exc, PatientErasedError):
        return Refusal("AE", "PID-3", "the patient's record was erased", error_code="204")
    if isinstance(exc, DuplicateMRN):
        return Refusal("AE", "PID-3", str(exc), error_code="205")
    if isinstance(exc, IdempotencyKeyReused):
        reason = (
            f"MSH-10 {header.control_id} was already used by this sender for another "
            "message; nothing was written: send it with a new control id"
        )
        return Refusal("AE", "MSH-10", reason, error_code="205")
    if isinstance(exc, ConflictError):
        return Refusal("AE", "", str(exc), error_code="206")
    return Refusal("AE", "", str(exc), error_code="207")


def _invalid(exc: ValidationError) -> Refusal:
    """A refusal naming the fields and what is wrong, never the values sent."""
    reasons = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )
    return Refusal("AE", "", reasons or "a value is not valid", error_code="102")


def _code_of(ack: bytes) -> str:
    for segment in ack.split(b"\r"):
        if segment.startswith(b"MSA"):
            return segment[4:6].decode("ascii", "replace")
    return ""


def _fields(header: Header | None, **more: str) -> dict[str, str]:
    """Log fields: which message, never what it says."""
    if header is None:
        return dict(more)
    return {
        "sender": header.sender.name,
        "message_type": header.message_type,
        "control_id": header.control_id,
        **more,
    }
