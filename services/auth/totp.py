"""Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s) with ``pyotp``.

Secrets are checked to be real base32 of at least 128 bits (RFC 4226) before they are kept;
a code is checked to be six ASCII digits before it is compared, and the time step it matched
is returned so the caller can refuse its reuse (a code is good once).
"""

from __future__ import annotations

import base64
import binascii
import re

import pyotp
from pyotp.exceptions import OTPVerificationError

STEP_S = 30
DIGITS = 6
DRIFT_STEPS = 1  # accept the previous and the next code too (clocks drift)
MIN_SECRET_BYTES = 16
MAX_SECRET_CHARS = 128
MFA_ROLES = frozenset({"admin", "compliance"})
_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_BASE32 = re.compile(r"[A-Z2-7]+", re.ASCII)


class InvalidSecret(ValueError):
    """Not a usable TOTP secret."""


def new_secret() -> str:
    """160 random bits in base32 (the RFC's recommended length)."""
    return pyotp.random_base32(32)


def validate_secret(secret: str) -> str:
    """The secret itself, or InvalidSecret: base32 (A-Z, 2-7, no padding) that decodes to at
    least 128 bits with no stray trailing bits (17 characters, say, is not base32)."""
    if len(secret) > MAX_SECRET_CHARS or not _BASE32.fullmatch(secret):
        raise InvalidSecret("a TOTP secret is base32: the letters A-Z and digits 2-7")
    padded = secret + "=" * (-len(secret) % 8)
    try:
        raw = base64.b32decode(padded)
    except binascii.Error as exc:
        raise InvalidSecret("this is not a whole base32 string (wrong length)") from exc
    if base64.b32encode(raw).decode().rstrip("=") != secret:
        raise InvalidSecret("this is not a whole base32 string (wrong length)")
    if len(raw) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"a TOTP secret has at least {MIN_SECRET_BYTES * 8} bits")
    return secret


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(validate_secret(secret), digits=DIGITS, interval=STEP_S)


def code_at(secret: str, unix_time: float) -> str:
    """The code an authenticator app shows at ``unix_time``."""
    return _totp(secret).at(unix_time)


def step_at(unix_time: float) -> int:
    return int(unix_time // STEP_S)


def matching_step(secret: str, code: str | None, unix_time: float) -> int | None:
    """The time step whose code this is (within the drift allowed), or None; anything but six
    ASCII digits is simply wrong."""
    if code is None:
        return None
    code = code.strip()
    if not _CODE.fullmatch(code):
        return None
    try:
        return _totp(secret).verify_and_get_timecode(
            code, for_time=unix_time, valid_window=DRIFT_STEPS
        )
    except OTPVerificationError:
        return None


def verify(secret: str, code: str, unix_time: float) -> bool:
    """Whether the code is right now (ignoring reuse: see ``matching_step``)."""
    return matching_step(secret, code, unix_time) is not None


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually as a QR code)."""
    return _totp(secret).provisioning_uri(name=username, issuer_name="clinical-backbone")
