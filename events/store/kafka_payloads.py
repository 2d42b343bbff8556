"""Payloads on Kafka, sealed with their patient's data key (client-side field-level encryption).

The relay publishes every envelope with its routing part in clear (ids, types, positions,
times, actor) and its clinical part, the payload and the free-text ``reason``, sealed with
AES-256-GCM under a per-topic subkey of the data key the store encrypts the event under:
``HKDF-SHA256(data key, info=b"kafka:" + topic)``. That is the patient's key for their
clinical events (``"key": "patient"``) and the store's operations key (``"key": "service"``)
for events about no patient and for those that stay readable after an erasure (the erasure
itself, chart views), exactly as in the store. The associated data is the envelope without
``payload`` and ``payload_encrypted`` as canonical JSON (its ``store`` included): a moved or
altered envelope fails to open. Consumers refuse an envelope of another store before
asking for any key (``store_refusal``). Destroying a patient's key (erasure) makes every
copy unreadable, wherever it is.

This module is pure (no I/O): the relay seals with it and ``projections.engine.keyclient``
opens with it, in the projections, the department consumers and the documented example.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.store.keys import KEY_BYTES, NONCE_BYTES, derive_key

# 1 (or absent): payload and reason in clear, as published before payloads were sealed;
# 2: sealed; 3: sealed and naming the store that published it (``store``).
ENVELOPE_VERSION = 3
STORE_NAMED_SINCE = 3
ALG = "A256GCM"
PATIENT_KEY = "patient"
SERVICE_KEY = "service"
# The envelope fields that travel inside the ciphertext.
SEALED_FIELDS = ("payload", "reason")
_NOT_AUTHENTICATED = ("payload", "payload_encrypted")


class PayloadUnreadable(Exception):
    """A sealed payload fails authentication or is malformed; the reason names no values."""


def topic_key(data_key: bytes, topic: str) -> bytes:
    """The subkey that seals payloads of one topic under one data key. ``topic`` is the
    contract's name (``clinical.patients``), never a deployment's prefixed Kafka name: a
    topic prefix changes where messages travel, not the keys they are sealed with."""
    return derive_key(data_key, b"kafka:" + topic.encode())


def store_refusal(envelope: Mapping[str, Any], store: str) -> str | None:
    """Why a consumer of store ``store`` must not apply this envelope, or None when it may.

    From envelope version 3 on, every envelope names the store that published it; one from
    another store (another deployment on the same cluster) is refused, as is a version 3 or
    later that names none. An envelope without ``store`` and of an older version (published
    before envelopes named their store) is taken as this store's."""
    origin = envelope.get("store")
    version = envelope.get("envelope_version", 1)
    if origin is None:
        if isinstance(version, int) and version < STORE_NAMED_SINCE:
            return None
        return f"envelope version {str(version)[:8]} names no store"
    if origin != store:
        return f"from store {str(origin)[:64]}, this deployment is store {store}"
    return None


def associated_data(envelope: Mapping[str, Any]) -> bytes:
    """The authenticated clear part: the envelope without its payload, canonical JSON."""
    clear = {k: v for k, v in envelope.items() if k not in _NOT_AUTHENTICATED}
    return json.dumps(clear, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(envelope: Mapping[str, Any], key: bytes, key_name: str) -> dict[str, Any]:
    """The published form of a clear envelope: payload and reason sealed under ``key``."""
    secret = json.dumps(
        {name: envelope[name] for name in SEALED_FIELDS}, separators=(",", ":")
    ).encode()
    sealed = {k: v for k, v in envelope.items() if k != "payload_encrypted"}
    sealed.update(envelope_version=ENVELOPE_VERSION, payload=None, reason=None)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, secret, associated_data(sealed))
    sealed["payload_encrypted"] = {
        "alg": ALG,
        "key": key_name,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return sealed


def key_ref(envelope: Mapping[str, Any]) -> str | None:
    """Which key opens the envelope: its patient id, ``"service"``, or None when it is clear."""
    sealed = envelope.get("payload_encrypted")
    if sealed is None:
        return None
    if not isinstance(sealed, Mapping):
        raise PayloadUnreadable("payload_encrypted is not an object")
    name = sealed.get("key")
    if name == SERVICE_KEY:
        return SERVICE_KEY
    patient_id = envelope.get("patient_id")
    if name != PATIENT_KEY:
        raise PayloadUnreadable("payload_encrypted names an unknown key")
    try:
        UUID(str(patient_id))
    except ValueError:
        raise PayloadUnreadable("sealed under a patient's key but patient_id is no UUID") from None
    return str(patient_id)


def _field(sealed: Mapping[str, Any], name: str) -> bytes:
    value = sealed.get(name)
    if not isinstance(value, str):
        raise PayloadUnreadable(f"payload_encrypted.{name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadUnreadable(f"payload_encrypted.{name} is not base64") from None


def open_sealed(envelope: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The clear envelope (payload and reason back in place), or ``PayloadUnreadable``."""
    sealed = envelope.get("payload_encrypted")
    if not isinstance(sealed, Mapping) or sealed.get("alg") != ALG:
        raise PayloadUnreadable("payload_encrypted has an unknown algorithm")
    if len(key) != KEY_BYTES:
        raise PayloadUnreadable("payload key has the wrong length")
    nonce, ciphertext = _field(sealed, "nonce"), _field(sealed, "ciphertext")
    if len(nonce) != NONCE_BYTES:
        raise PayloadUnreadable("payload_encrypted.nonce has the wrong length")
    try:
        secret = AESGCM(key).decrypt(nonce, ciphertext, associated_data(envelope))
    except InvalidTag:
        raise PayloadUnreadable("payload fails authentication (altered or moved)") from None
    try:
        body = json.loads(secret)
        opened = {name: body[name] for name in SEALED_FIELDS}
    except (ValueError, KeyError, TypeError):
        raise PayloadUnreadable("sealed payload is not the expected JSON") from None
    return {**envelope, **opened, "payload_encrypted": None}


def shredded(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A sealed envelope whose key is gone, as the relay publishes an erased patient's."""
    return {
        **envelope,
        "occurred_at": None,
        "reason": None,
        "payload": None,
        "payload_encrypted": None,
        "erased": True,
    }
