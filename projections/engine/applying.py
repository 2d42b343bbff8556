"""Decoding a Kafka message into an envelope and applying it once to a projection.

Sealed payloads are opened with the key service's keys (``projections.engine.keyclient``);
one whose key is gone comes back as an erased envelope (purged, never dead-lettered). A
message that cannot be decoded (not JSON, not an envelope, a sealed payload that fails
authentication, unknown event type or version, payload invalid for its schema) is
``Undecodable`` with a reason that names fields and error kinds but never the values, so
it can go to the dead-letter topic and into logs without leaking clinical data. So is an
envelope of another store (``store_refusal``): refused before any key is asked for.

Kafka records carry this deployment's topic names (prefixed); a decoded message carries
the contract's name (``TopicNames.logical``), which marks are kept under.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor
from pydantic import ValidationError

from events.domain.contract import UnknownEventType, read_payload
from events.domain.payloads.base import Payload
from events.domain.topics import TopicNames
from events.store.kafka_payloads import PayloadUnreadable, store_refusal
from events.store.log import LoggedEvent
from events.store.published import PublishedEnvelope, published_model
from projections.engine.base import Projection
from projections.engine.keyclient import KeyClient, KeyUnknown
from projections.engine.marks import MarkKey, Marks


@dataclass(frozen=True)
class Decoded:
    """An envelope, its typed payload (None once erased) and the contract topic it travels
    on (``clinical.patients``, whatever this deployment's prefix)."""

    topic: str
    envelope: PublishedEnvelope
    payload: Payload | None


class Undecodable(Exception):
    """The message is not a valid envelope of the contract."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['type']}"
        for error in exc.errors()[:10]
    )


def parse(raw: bytes | None) -> dict[str, Any]:
    """The message as a JSON object, or ``Undecodable``."""
    try:
        data = json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Undecodable("invalid envelope: not JSON") from None
    if not isinstance(data, dict):
        raise Undecodable("invalid envelope: not a JSON object")
    return data


def decode_clear(data: dict[str, Any]) -> tuple[PublishedEnvelope, Payload | None]:
    """The envelope and its typed payload (None for an erased envelope), from its opened
    (clear) JSON object."""
    try:
        envelope = PublishedEnvelope.model_validate(data)
    except ValidationError as exc:
        raise Undecodable(f"invalid envelope: {_describe(exc)}") from None
    if envelope.payload_encrypted is not None:
        raise Undecodable("envelope still sealed")
    if envelope.payload is None:
        if not envelope.erased:
            raise Undecodable("envelope without payload that is not marked erased")
        return envelope, None
    try:
        payload = read_payload(envelope.event_type, envelope.schema_version, envelope.payload)
    except UnknownEventType as exc:
        raise Undecodable(str(exc)) from None
    except ValidationError as exc:
        raise Undecodable(
            f"invalid {envelope.event_type} v{envelope.schema_version} payload: {_describe(exc)}"
        ) from None
    return envelope, payload


def opened(topic: str, data: dict[str, Any], keys: KeyClient) -> dict[str, Any]:
    """The envelope with its payload opened (or in its erased form when the key is gone)."""
    sealed = data.get("payload_encrypted") is not None
    version = data.get("envelope_version", 1)
    if not sealed and data.get("payload") is not None and version != 1:
        raise Undecodable(f"envelope version {str(version)[:8]} with a payload in clear")
    try:
        return keys.open(topic, data)
    except (PayloadUnreadable, KeyUnknown) as exc:
        raise Undecodable(str(exc)) from None


def decode(
    raw: bytes | None, topic: str, keys: KeyClient
) -> tuple[PublishedEnvelope, Payload | None]:
    """The envelope of one Kafka message and its typed payload (None once erased)."""
    return decode_clear(opened(topic, parse(raw), keys))


def ours(record: Any, topics: TopicNames, store: str) -> tuple[str, dict[str, Any]]:
    """The contract topic and JSON object of a message of this deployment's store, or
    ``Undecodable`` (not JSON, not one of our topics, another store's envelope)."""
    data = parse(record.value)
    topic = topics.logical(record.topic)
    if topic is None:
        raise Undecodable(f"not a topic of this deployment (prefix {topics.prefix!r})")
    refused = store_refusal(data, store)
    if refused is not None:
        raise Undecodable(refused)
    return topic, data


def decode_batch(
    records: Sequence[Any], keys: KeyClient, topics: TopicNames, store: str
) -> list[Decoded | Undecodable]:
    """Decode the messages of one poll for store ``store``, fetching their keys in one
    request per topic (the Kafka topic asked for: the key service knows its prefix)."""
    parsed: list[tuple[str, dict[str, Any]] | Undecodable] = []
    for record in records:
        try:
            parsed.append(ours(record, topics, store))
        except Undecodable as exc:
            parsed.append(exc)
    keys.prefetch(
        (r.topic, p[1]) for r, p in zip(records, parsed, strict=True) if isinstance(p, tuple)
    )
    decoded: list[Decoded | Undecodable] = []
    for record, found in zip(records, parsed, strict=True):
        try:
            if isinstance(found, Undecodable):
                raise found
            topic, data = found
            decoded.append(Decoded(topic, *decode_clear(opened(record.topic, data, keys))))
        except Undecodable as exc:
            decoded.append(exc)
    return decoded


def from_log(logged: LoggedEvent) -> Decoded:
    """A stored event as consumers see it on Kafka: its topic, envelope and payload."""
    envelope, payload = published_model(logged)
    return Decoded(logged.topic, envelope, payload)


def mark_key(topic: str, envelope: PublishedEnvelope) -> MarkKey:
    """The (topic, key) an envelope's mark is kept under: its Kafka partition key."""
    return topic, str(envelope.patient_id or envelope.aggregate_id)


def apply_once(
    cur: Cursor[Any],
    projection: Projection,
    marks: Marks,
    topic: str,
    envelope: PublishedEnvelope,
    payload: Payload | None,
) -> bool:
    """Apply unless this (topic, key) already saw the position; True when applied.

    ``marks`` must have loaded this envelope's key and patient; the new mark is recorded
    there (and written when the caller flushes it), only once the apply has succeeded."""
    topic, key = mark_key(topic, envelope)
    mark = marks.mark(topic, key)
    if mark is not None and envelope.position <= mark:
        return False
    patient_id = envelope.patient_id
    erased = patient_id is not None and marks.is_erased(patient_id)
    if envelope.erased and patient_id is not None:
        projection.purge(cur, patient_id)
        if projection.on_erased is not None:
            projection.on_erased(cur, envelope)
        marks.erase(patient_id)
    elif erased and projection.on_erased is not None:
        # Readable (not under the patient's key) but of an erased patient: only what the
        # envelope says is kept, as if it had been applied and then purged.
        projection.on_erased(cur, envelope)
    elif payload is not None and not erased:
        projection.apply(cur, envelope, payload)
    marks.set(topic, key, envelope.position)
    return True
