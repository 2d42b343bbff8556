"""Turns clinical events into stored rows and back, encrypting under the patient's key.

A stored event's ``state`` is ``MAGIC | header length | header | nonce | ciphertext``:

- the *header* (clear JSON) holds only what routing and audit need without clinical
  content: event id and type, schema version, patient id (a random UUID, never an MRN),
  recording time, actor, correlation and causation ids. After erasure the relay can still
  publish an envelope from it.
- the *ciphertext* (AES-256-GCM under the patient's data key, with header, stream id and
  version as associated data) holds the clinical part: ``occurred_at``, ``reason`` and
  the payload. Moving or editing a header without the key is detected on decryption.

Payloads of older schema versions are upcast on read.
"""

from __future__ import annotations

import json
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)

from events.domain.contract import read_payload
from events.domain.envelope import Actor, ClinicalEvent
from events.domain.errors import PatientErasedError
from events.store.keys import NONCE_BYTES, OPERATIONS_KEY_ID, Keyring

MAGIC = b"CB1"
# Events that must stay readable after their patient's key is destroyed: the erasure
# itself, and the access log (a read of an erased patient's metadata is still audited).
OPERATIONS_KEYED = frozenset({"patient.erased", "erasure.requested", "chart.viewed"})
_LEN = struct.Struct(">I")


_ACTOR_FIELDS = frozenset({"user_id", "role", "on_behalf_of"})


def _actor(data: dict[str, Any]) -> Actor:
    """The header's actor; the few actors of a store repeat, so their validation is cached."""
    if not data.keys() <= _ACTOR_FIELDS:
        return Actor.model_validate(data)  # refuses the unknown field
    return _known_actor(data["user_id"], data["role"], data.get("on_behalf_of"))


@lru_cache(maxsize=4096)
def _known_actor(user_id: str, role: str, on_behalf_of: str | None) -> Actor:
    return Actor.model_validate({"user_id": user_id, "role": role, "on_behalf_of": on_behalf_of})


@dataclass(frozen=True)
class EventHeader:
    """The clear part of a stored event."""

    event_id: UUID
    event_type: str
    schema_version: int
    patient_id: UUID | None
    recorded_at: datetime
    actor: Actor
    correlation_id: UUID
    causation_id: UUID | None
    key_id: UUID

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "patient_id": str(self.patient_id) if self.patient_id else None,
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor.model_dump(mode="json"),
            "correlation_id": str(self.correlation_id),
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "key_id": str(self.key_id),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EventHeader:
        return cls(
            event_id=UUID(data["event_id"]),
            event_type=data["event_type"],
            schema_version=int(data["schema_version"]),
            patient_id=UUID(data["patient_id"]) if data["patient_id"] else None,
            recorded_at=datetime.fromisoformat(data["recorded_at"]),
            actor=_actor(data["actor"]),
            correlation_id=UUID(data["correlation_id"]),
            causation_id=UUID(data["causation_id"]) if data["causation_id"] else None,
            key_id=UUID(data["key_id"]),
        )


def key_id_for(event: ClinicalEvent) -> UUID:
    """The data key an event is encrypted under: its patient's, or the operations key."""
    if event.patient_id is None or event.event_type in OPERATIONS_KEYED:
        return OPERATIONS_KEY_ID
    return event.patient_id


def header_of(event: ClinicalEvent) -> EventHeader:
    """The clear header of a decrypted event, without parsing the stored one again."""
    return EventHeader(
        event_id=event.event_id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        patient_id=event.patient_id,
        recorded_at=event.timestamp,
        actor=event.actor,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        key_id=key_id_for(event),
    )


class ErasedEventError(MapperDeserialisationError):
    """The event belongs to an erased patient: its header is readable, its content is not."""

    def __init__(self, header: EventHeader, originator_id: UUID, originator_version: int):
        super().__init__(f"event {header.event_id} belongs to an erased patient")
        self.header = header
        self.originator_id = originator_id
        self.originator_version = originator_version


def _aad(header_bytes: bytes, originator_id: UUID, version: int) -> bytes:
    return header_bytes + originator_id.bytes + struct.pack(">q", version)


def split_state(state: bytes) -> tuple[bytes, bytes, bytes]:
    """(header bytes, nonce, ciphertext) of a stored state."""
    if not state.startswith(MAGIC):
        raise MapperDeserialisationError("stored event has an unknown format")
    offset = len(MAGIC)
    (length,) = _LEN.unpack_from(state, offset)
    offset += _LEN.size
    header = state[offset : offset + length]
    offset += length
    return header, state[offset : offset + NONCE_BYTES], state[offset + NONCE_BYTES :]


class ClinicalMapper(Mapper[UUID]):
    """The ``eventsourcing`` mapper for clinical events, with per-patient encryption."""

    def __init__(self, keyring: Keyring) -> None:
        super().__init__(transcoder=JSONTranscoder())
        self.keyring = keyring

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        event: ClinicalEvent = domain_event
        header = header_of(event)
        header_bytes = json.dumps(header.to_json(), separators=(",", ":")).encode()
        secret = json.dumps(
            {
                "occurred_at": event.occurred_at.isoformat(),
                "reason": event.reason,
                "payload": event.payload.model_dump(mode="json"),
            },
            separators=(",", ":"),
        ).encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        key = self.keyring.key_for_writing(header.key_id)
        ciphertext = AESGCM(key).encrypt(
            nonce, secret, _aad(header_bytes, event.originator_id, event.originator_version)
        )
        state = MAGIC + _LEN.pack(len(header_bytes)) + header_bytes + nonce + ciphertext
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=event.event_type,
            state=state,
        )

    def key_id_of(self, stored: StoredEvent) -> UUID:
        """The id of the data key a stored event is encrypted under (header only)."""
        return UUID(json.loads(split_state(stored.state)[0])["key_id"])

    def decode_header(self, stored: StoredEvent) -> EventHeader:
        header_bytes, _, _ = split_state(stored.state)
        return EventHeader.from_json(json.loads(header_bytes))

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        header_bytes, nonce, ciphertext = split_state(stored_event.state)
        header = EventHeader.from_json(json.loads(header_bytes))
        originator_id = UUID(str(stored_event.originator_id))
        try:
            key = self.keyring.key_for_reading(header.key_id)
        except PatientErasedError as exc:
            raise ErasedEventError(header, originator_id, stored_event.originator_version) from exc
        try:
            secret = AESGCM(key).decrypt(
                nonce,
                ciphertext,
                _aad(header_bytes, originator_id, stored_event.originator_version),
            )
        except InvalidTag as exc:
            raise MapperDeserialisationError(
                f"stored event {header.event_id} fails authentication (altered or misplaced)"
            ) from exc
        body = json.loads(secret)
        payload = read_payload(header.event_type, header.schema_version, body["payload"])
        return ClinicalEvent(
            originator_id=originator_id,
            originator_version=stored_event.originator_version,
            timestamp=header.recorded_at,
            event_id=header.event_id,
            event_type=header.event_type,
            schema_version=payload.schema_version,
            patient_id=header.patient_id,
            occurred_at=datetime.fromisoformat(body["occurred_at"]),
            actor=header.actor,
            reason=body["reason"],
            correlation_id=header.correlation_id,
            causation_id=header.causation_id,
            payload=payload,
        )
