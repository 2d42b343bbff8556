"""The store's side of sealed Kafka payloads: the relay seals with these keys, the key service
hands them to subscribers (``events.store.kafka_payloads`` says what they seal)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from events.domain.errors import PatientErasedError
from events.store.kafka_payloads import ENVELOPE_VERSION, PATIENT_KEY, SERVICE_KEY, seal, topic_key
from events.store.keys import OPERATIONS_KEY_ID, Keyring
from events.store.log import LoggedEvent
from events.store.published import erased_envelope, published_envelope


class PayloadKeys:
    """Per-topic subkeys of the store's data keys, for publishing and for subscribers.
    Topics are the contract's names (never a deployment's prefixed Kafka names); the
    envelopes published name the store (``store``)."""

    def __init__(self, keyring: Keyring, store: str) -> None:
        self.keyring = keyring
        self.store = store

    def for_subscribers(self, topic: str, key_ids: Collection[UUID]) -> dict[UUID, bytes | None]:
        """Each key's subkey for the topic, read fresh from the key store (an erasure made a
        moment ago is honoured); None for a destroyed key; an unknown key is absent.
        ``OPERATIONS_KEY_ID`` stands for the ``"service"`` key."""
        found = self.keyring.read_fresh(key_ids)
        return {k: topic_key(key, topic) if key is not None else None for k, key in found.items()}

    def published(self, events: Sequence[LoggedEvent]) -> list[dict[str, Any]]:
        """The envelopes the relay publishes for a page of stored events: each payload sealed
        under its key's subkey for its topic (one derivation per key and topic), or the
        erased form when the key is gone (also when it went since the page was read)."""
        subkeys: dict[tuple[UUID, str], bytes | None] = {}
        envelopes = []
        named = {"envelope_version": ENVELOPE_VERSION, "store": self.store}
        for logged in events:
            if logged.event is None:
                envelopes.append({**erased_envelope(logged), **named})
                continue
            key_id, topic = logged.header.key_id, logged.topic
            if (key_id, topic) not in subkeys:
                try:
                    subkeys[key_id, topic] = topic_key(self.keyring.key_for_reading(key_id), topic)
                except PatientErasedError:
                    subkeys[key_id, topic] = None
            subkey = subkeys[key_id, topic]
            if subkey is None:
                envelopes.append({**erased_envelope(logged), **named})
                continue
            name = SERVICE_KEY if key_id == OPERATIONS_KEY_ID else PATIENT_KEY
            clear = {**published_envelope(logged), "store": self.store}
            envelopes.append(seal(clear, subkey, name))
        return envelopes
