"""The published form of a stored event: the envelope JSON of the event contract.

The relay publishes it on Kafka and projection rebuilds read it straight from the store,
so both see identical envelopes. An erased patient's events keep their clear header and
go out with ``payload: null`` and ``erased: true`` so that consumers purge them. On Kafka
the relay seals payload and reason and names the store (envelope version 3,
``events.store.payload_keys``); rebuilds read the clear form of their own store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.domain.envelope import Actor
from events.domain.payloads.base import Payload
from events.store.kafka_payloads import STORE_NAMED_SINCE
from events.store.log import LoggedEvent


class EncryptedPayload(BaseModel):
    """``payload`` and ``reason`` sealed with AES-256-GCM under a per-topic subkey of the
    patient's data key (``key: patient``) or of the store's operations key (``service``);
    the rest of the envelope is the associated data (``events.store.kafka_payloads``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alg: Literal["A256GCM"]
    key: Literal["patient", "service"] = Field(description="Which data key: ask the key service.")
    nonce: str = Field(description="96-bit nonce, base64.")
    ciphertext: str = Field(description='JSON {"payload", "reason"} sealed, tag appended, base64.')


class PublishedEnvelope(BaseModel):
    """The JSON object every Kafka message of the contract carries (its JSON Schema)."""

    model_config = ConfigDict(extra="forbid", title="clinical-backbone event envelope")

    event_id: UUID = Field(description="Unique; consumers deduplicate on it.")
    event_type: str = Field(description="Dotted, past tense, e.g. `result.received`.")
    schema_version: int = Field(ge=1, description="Payload schema version of this event type.")
    patient_id: UUID | None = Field(description="Partition key; null for non-patient events.")
    aggregate_id: UUID = Field(description="The stream the event belongs to.")
    aggregate_version: int = Field(ge=1, description="Position of the event in its stream.")
    position: int = Field(ge=1, description="Global position in the store (total order).")
    occurred_at: datetime | None = Field(description="Clinical time; null when erased.")
    recorded_at: datetime = Field(description="System time the store recorded the event.")
    actor: Actor
    reason: str | None = Field(description="Why: required for changes, amendments, break-glass.")
    correlation_id: UUID
    causation_id: UUID | None
    payload: dict[str, Any] | None = Field(
        description="Valid against the schema of event_type + schema_version; null if erased "
        "or sealed (envelope version 2: see payload_encrypted)."
    )
    erased: bool = Field(description="True when the patient was erased: purge what you hold.")
    envelope_version: int = Field(
        default=1,
        ge=1,
        le=3,
        description="3: as 2, and store names the store that published it; 2: payload and "
        "reason travel sealed in payload_encrypted (reason is then null in clear); 1 or "
        "absent: in clear (messages published before sealing).",
    )
    store: str | None = Field(
        default=None,
        description="The store that published it (envelope version 3 on; its deployment's "
        "BACKBONE_STORE_NAME). Consumers refuse (dead-letter) an envelope of another store; "
        "one without store is taken as their own only if its envelope_version is below 3.",
    )
    payload_encrypted: EncryptedPayload | None = Field(
        default=None,
        description="The sealed payload and reason; null when erased or once opened.",
    )

    @model_validator(mode="after")
    def _names_its_store(self) -> Self:
        if self.envelope_version >= STORE_NAMED_SINCE and self.store is None:
            raise ValueError(f"envelope version {self.envelope_version} names its store")
        return self


def published_envelope(logged: LoggedEvent) -> dict[str, Any]:
    """The envelope of a stored event: decrypted, or marked erased."""
    event = logged.event
    if event is None:
        return erased_envelope(logged)
    return {**event.envelope(logged.position), "erased": event.event_type == "patient.erased"}


def erased_envelope(logged: LoggedEvent) -> dict[str, Any]:
    """An erased patient's event: its clear header, no payload, marked erased."""
    header = logged.header
    return {
        "event_id": str(header.event_id),
        "event_type": header.event_type,
        "schema_version": header.schema_version,
        "patient_id": str(header.patient_id) if header.patient_id else None,
        "aggregate_id": str(logged.stream_id),
        "aggregate_version": logged.stream_version,
        "position": logged.position,
        "occurred_at": None,
        "recorded_at": header.recorded_at.isoformat(),
        "actor": header.actor.model_dump(mode="json"),
        "reason": None,
        "correlation_id": str(header.correlation_id),
        "causation_id": str(header.causation_id) if header.causation_id else None,
        "payload": None,
        "erased": True,
    }


def published_model(logged: LoggedEvent) -> tuple[PublishedEnvelope, Payload | None]:
    """What ``PublishedEnvelope.model_validate(published_envelope(...))`` gives, built from
    the already-typed event without the round trip through JSON types (rebuilds and replays
    decode every stored event, and that round trip was a third of their time)."""
    event = logged.event
    if event is None:
        return PublishedEnvelope.model_validate(erased_envelope(logged)), None
    envelope = PublishedEnvelope.model_construct(
        event_id=event.event_id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        patient_id=event.patient_id,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=logged.position,
        occurred_at=event.occurred_at,
        recorded_at=event.timestamp,
        actor=event.actor,
        reason=event.reason,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        payload=event.payload.model_dump(mode="json"),
        erased=event.event_type == "patient.erased",
    )
    return envelope, event.payload
