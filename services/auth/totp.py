"""Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30 s), the optional second factor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct

STEP_S = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()


def code_at(secret: str, unix_time: float) -> str:
    counter = int(unix_time // STEP_S)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def verify(secret: str, code: str, unix_time: float) -> bool:
    """Accept the current code and its neighbours (clock drift of one step)."""
    return any(
        hmac.compare_digest(code_at(secret, unix_time + drift * STEP_S), code.strip())
        for drift in (-1, 0, 1)
    )
