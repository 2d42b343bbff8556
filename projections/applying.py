"""Decoding a Kafka message into an envelope and applying it once to a projection.

A message that cannot be decoded (not JSON, not an envelope, unknown event type or
version, payload invalid for its schema) raises ``Undecodable`` with a reason that names
fields and error kinds but never the values, so it can go to the dead-letter topic and
into logs without leaking clinical data.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor
from pydantic import ValidationError

from events.contract import UnknownEventType, read_payload
from events.payloads.base import Payload
from events.published import PublishedEnvelope
from projections.base import Projection
from projections.state import is_erased, mark_erased, mark_of, set_mark


class Undecodable(Exception):
    """The message is not a valid envelope of the contract."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['type']}"
        for error in exc.errors()[:10]
    )


def decode(raw: bytes) -> tuple[PublishedEnvelope, Payload | None]:
    """The envelope and its typed payload (None for an erased envelope)."""
    try:
        envelope = PublishedEnvelope.model_validate_json(raw)
    except ValidationError as exc:
        raise Undecodable(f"invalid envelope: {_describe(exc)}") from None
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


def apply_once(
    cur: Cursor[Any],
    projection: Projection,
    topic: str,
    envelope: PublishedEnvelope,
    payload: Payload | None,
) -> bool:
    """Apply unless this (topic, key) already saw the position; True when applied."""
    key = str(envelope.patient_id or envelope.aggregate_id)
    mark = mark_of(cur, projection.name, topic, key)
    if mark is not None and envelope.position <= mark:
        return False
    patient_id = envelope.patient_id
    if envelope.erased and patient_id is not None:
        projection.purge(cur, patient_id)
        mark_erased(cur, projection.name, patient_id)
    elif payload is not None and not (
        patient_id is not None and is_erased(cur, projection.name, patient_id)
    ):
        projection.apply(cur, envelope, payload)
    set_mark(cur, projection.name, topic, key, envelope.position)
    return True
