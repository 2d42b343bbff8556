"""Opaque session tokens: 256 random bits, of which the server keeps only a SHA-256 hash.

Chosen over signed tokens (JWT) because a session is looked up on every request anyway (idle
logoff): a random token then needs no signing key that could leak or be rotated, revoking
a session or deactivating a user takes effect on the next request, and a stolen copy of the
sessions table holds no usable token. SHA-256 without salt suffices: the input is random,
not a password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 100


@dataclass(frozen=True)
class NewToken:
    """A token for the client, and the hash the server keeps."""

    token: str
    digest: str


def new_token() -> NewToken:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return NewToken(token, digest(token))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def plausible(token: str) -> bool:
    """Cheap shape check before a lookup (URL-safe base64 of the right size)."""
    return 0 < len(token) <= MAX_TOKEN_CHARS and token.isascii()
