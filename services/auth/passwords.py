"""Password hashing with scrypt (memory-hard), from the ``cryptography`` package."""

from __future__ import annotations

import base64
import hmac
import secrets

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

N, R, P = 2**15, 8, 1  # ~32 MiB per hash: slow for an attacker, fine for a login
LENGTH = 32


def _kdf(salt: bytes, n: int = N, r: int = R, p: int = P) -> Scrypt:
    return Scrypt(salt=salt, length=LENGTH, n=n, r=r, p=p)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _kdf(salt).derive(password.encode())
    encode = base64.b64encode
    return f"scrypt${N}${R}${P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    try:
        _kdf(base64.b64decode(salt), int(n), int(r), int(p)).verify(
            password.encode(), base64.b64decode(digest)
        )
    except InvalidKey:
        return False
    return True


def dummy_verify() -> None:
    """Spend the time of a verification, so unknown usernames are not faster to reject."""
    hmac.compare_digest(_kdf(b"0" * 16).derive(b"x"), b"y" * LENGTH)
