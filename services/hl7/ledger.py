"""What the listener keeps: the ACK of every message, and the messages it refused.

``<store>_hl7_acks`` holds the ACK answered to each (sender, MSH-10): a resend is answered
with the same bytes, and when two copies race the first one recorded wins (the second
answers it). ``<store>_hl7_rejected`` keeps each refused message with its reason, its raw
text sealed under the patient's data key when the refusal names a known patient (erasing
the patient makes it unreadable), else under a service key of the store. Both tables live
beside the store's own (``<store>_*``), so backups include them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.domain.errors import PatientErasedError
from events.store.migrating import create_if_allowed
from services.auth.sealing import SecretBox, UnreadableSecret

PURPOSE = b"clinical-backbone/hl7/rejected-messages/v1"


def table_names(store_name: str) -> tuple[str, str]:
    """The (acks, rejected) tables of a store."""
    return f"{store_name}_hl7_acks", f"{store_name}_hl7_rejected"


@dataclass(frozen=True)
class Answered:
    """The ACK answered to one message of a sender."""

    sender: str
    control_id: str
    message_type: str
    code: str
    ack: bytes


@dataclass(frozen=True)
class Rejection:
    """A refused message as it is kept: no clinical content in clear."""

    received_at: datetime
    sender: str | None
    message_type: str | None
    control_id: str | None
    code: str
    error_code: str
    location: str
    reason: str
    key_id: UUID | None  # the patient whose key seals it; None: the service key
    owner: UUID  # the associated data of the seal
    sealed: str | None  # None: the patient was erased, the text is not kept


@dataclass(frozen=True)
class RejectedRow:
    """One line of ``backbone hl7 rejected``."""

    id: int
    received_at: datetime
    sender: str | None
    message_type: str | None
    control_id: str | None
    code: str
    error_code: str
    reason: str
    attempts: int
    replayed_at: datetime | None


class UnreadableMessage(Exception):
    """A kept message that can no longer be read (its patient was erased)."""


def _box(store: ClinicalStore, key_id: UUID | None, *, writing: bool) -> SecretBox:
    if key_id is None:
        return SecretBox(store.service_key(PURPOSE))
    return SecretBox(store.patient_key(key_id, PURPOSE, writing=writing))


def seal(store: ClinicalStore, patient_id: UUID | None, text: str) -> tuple[UUID, str | None]:
    """(owner, sealed text) of a refused message; sealed is None for an erased patient."""
    owner = uuid4()
    try:
        return owner, _box(store, patient_id, writing=True).seal(owner, text)
    except PatientErasedError:
        return owner, None


def unseal(store: ClinicalStore, key_id: UUID | None, owner: UUID, sealed: str | None) -> str:
    """The raw text of a kept message, or UnreadableMessage."""
    if sealed is None:
        raise UnreadableMessage("its patient was erased: the message was not kept")
    try:
        return _box(store, key_id, writing=False).open(owner, sealed)
    except PatientErasedError:
        raise UnreadableMessage("its patient was erased: the message is unreadable") from None
    except UnreadableSecret:
        raise UnreadableMessage("the sealed message does not open with this store's keys") from None


class Ledger:
    """The ACK and rejected-message tables of one store."""

    def __init__(self, pool: ConnectionPool, store_name: str) -> None:
        self.pool = pool
        acks_name, rejected_name = table_names(store_name)
        acks, rejected = sql.Identifier(acks_name), sql.Identifier(rejected_name)
        self._create = [
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (sender text NOT NULL, control_id text NOT NULL, "
                "message_type text NOT NULL, code text NOT NULL, ack bytea NOT NULL, "
                "answered_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (sender, control_id))"
            ).format(acks),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                "received_at timestamptz NOT NULL, sender text, message_type text, "
                "control_id text, code text NOT NULL, error_code text NOT NULL, "
                "location text NOT NULL, reason text NOT NULL, key_id uuid, owner uuid NOT NULL, "
                "sealed text, attempts integer NOT NULL DEFAULT 1, "
                "last_attempt_at timestamptz NOT NULL DEFAULT now(), replayed_at timestamptz, "
                "replay_ack bytea)"
            ).format(rejected),
        ]
        self._answered = sql.SQL("SELECT ack FROM {} WHERE sender = %s AND control_id = %s").format(
            acks
        )
        self._insert_ack = sql.SQL(
            "INSERT INTO {} (sender, control_id, message_type, code, ack) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sender, control_id) DO NOTHING RETURNING ack"
        ).format(acks)
        self._upsert_ack = sql.SQL(
            "INSERT INTO {} (sender, control_id, message_type, code, ack) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sender, control_id) DO UPDATE SET "
            "message_type = EXCLUDED.message_type, code = EXCLUDED.code, ack = EXCLUDED.ack, "
            "answered_at = now()"
        ).format(acks)
        self._reject = sql.SQL(
            "INSERT INTO {} (received_at, sender, message_type, control_id, code, error_code, "
            "location, reason, key_id, owner, sealed) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(rejected)
        self._replayed = sql.SQL(
            "UPDATE {} SET attempts = attempts + 1, last_attempt_at = now(), "
            "replayed_at = now(), replay_ack = %s WHERE id = %s"
        ).format(rejected)
        self._refused_again = sql.SQL(
            "UPDATE {} SET attempts = attempts + 1, last_attempt_at = now(), code = %s, "
            "error_code = %s, location = %s, reason = %s WHERE id = %s"
        ).format(rejected)
        self._list = sql.SQL(
            "SELECT id, received_at, sender, message_type, control_id, code, error_code, reason, "
            "attempts, replayed_at FROM {} WHERE (%s OR replayed_at IS NULL) "
            "ORDER BY id DESC LIMIT %s"
        ).format(rejected)
        self._kept = sql.SQL(
            "SELECT key_id, owner, sealed, replayed_at FROM {} WHERE id = %s"
        ).format(rejected)

    def create(self) -> None:
        """Create the tables unless they exist (call under the schema lock)."""
        with self.pool.connection() as conn:
            create_if_allowed(conn, *self._create)

    def answered(self, sender: str, control_id: str) -> bytes | None:
        """The ACK already answered to this message of this sender, if any."""
        with self.pool.connection() as conn:
            row = conn.execute(self._answered, (sender, control_id)).fetchone()
        return bytes(row[0]) if row else None

    def record(self, answered: Answered | None, rejection: Rejection | None) -> bytes | None:
        """Record a first answer (and the refused message), in one transaction. When a copy
        of the message was answered first, nothing is recorded and its ACK is returned."""
        with self.pool.connection() as conn, conn.transaction():
            if answered is not None:
                row = conn.execute(
                    self._insert_ack,
                    (
                        answered.sender,
                        answered.control_id,
                        answered.message_type,
                        answered.code,
                        answered.ack,
                    ),
                ).fetchone()
                if row is None:
                    first = conn.execute(
                        self._answered, (answered.sender, answered.control_id)
                    ).fetchone()
                    return bytes(first[0]) if first else answered.ack
            if rejection is not None:
                conn.execute(self._reject, _rejection_row(rejection))
        return answered.ack if answered is not None else None

    def record_replay(
        self, rejected_id: int, answered: Answered | None, rejection: Rejection | None
    ) -> None:
        """Record the answer to a replay: it replaces the stored ACK (a resend now gets it);
        the kept message is marked replayed, or its new reason noted."""
        with self.pool.connection() as conn, conn.transaction():
            if answered is not None:
                conn.execute(
                    self._upsert_ack,
                    (
                        answered.sender,
                        answered.control_id,
                        answered.message_type,
                        answered.code,
                        answered.ack,
                    ),
                )
            if rejection is None:
                ack = answered.ack if answered is not None else None
                conn.execute(self._replayed, (ack, rejected_id))
            else:
                conn.execute(
                    self._refused_again,
                    (
                        rejection.code,
                        rejection.error_code,
                        rejection.location,
                        rejection.reason,
                        rejected_id,
                    ),
                )

    def rejected(self, limit: int = 100, *, include_replayed: bool = False) -> list[RejectedRow]:
        """The refused messages, newest first (no message content)."""
        with self.pool.connection() as conn:
            rows = conn.execute(self._list, (include_replayed, limit)).fetchall()
        return [RejectedRow(*row) for row in rows]

    def kept(self, rejected_id: int) -> tuple[UUID | None, UUID, str | None, datetime | None]:
        """(key id, owner, sealed text, replayed at) of a kept message, or KeyError."""
        with self.pool.connection() as conn:
            row = conn.execute(self._kept, (rejected_id,)).fetchone()
        if row is None:
            raise KeyError(rejected_id)
        return row[0], row[1], row[2], row[3]


def _rejection_row(r: Rejection) -> tuple[object, ...]:
    return (
        r.received_at,
        r.sender,
        r.message_type,
        r.control_id,
        r.code,
        r.error_code,
        r.location,
        r.reason,
        r.key_id,
        r.owner,
        r.sealed,
    )
