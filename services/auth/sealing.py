"""TOTP secrets encrypted at rest (AES-256-GCM), bound to their user.

The key is the store's service key for this purpose (``StoreCore.service_key``: a subkey
of the store's operations data key, wrapped by the master key, shared by every process of
the store, never destroyed). The user id is
the associated data, so a sealed secret copied onto another user's row does not open.
"""

from __future__ import annotations

import base64
import secrets
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.application import ClinicalStore

PURPOSE = b"clinical-backbone/auth/totp-secrets/v1"
PREFIX = "v1:"
NONCE_BYTES = 12


class UnreadableSecret(Exception):
    """A sealed secret that does not open with this key (another store, or tampered)."""


class SecretBox:
    """Seals and opens short secrets under one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def for_store(cls, store: ClinicalStore) -> SecretBox:
        """The box of a store's credentials (see the module docstring for the key)."""
        return cls(store.service_key(PURPOSE))

    def seal(self, owner: UUID, plaintext: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), owner.bytes)
        return PREFIX + base64.b64encode(sealed).decode()

    def open(self, owner: UUID, sealed: str) -> str:
        if not is_sealed(sealed):
            raise UnreadableSecret("not a sealed secret")
        try:
            raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.bytes)
        except (ValueError, InvalidTag) as exc:
            raise UnreadableSecret("the sealed secret does not open with this key") from exc
        return plain.decode()


def is_sealed(value: str) -> bool:
    """Whether a stored value is sealed (earlier versions kept secrets in clear)."""
    return value.startswith(PREFIX)
