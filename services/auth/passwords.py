"""Password hashing with Argon2id (``argon2-cffi``); scrypt hashes of earlier versions still
verify and are upgraded at the next successful login.

Parameters are OWASP's Argon2id minimum (19 MiB, 2 passes, 1 lane): memory-hard for an
attacker, about 30 ms per login on this machine, and cheap enough in memory that a burst of
logins (bounded by the throttle) cannot exhaust the server.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MIN_LENGTH = 12
MAX_LENGTH = 200
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


class WeakPassword(ValueError):
    """The password does not meet the length policy."""


@dataclass(frozen=True)
class Verified:
    """Whether the password matched, and whether its hash should be replaced."""

    ok: bool
    needs_rehash: bool = False


def check_policy(password: str) -> str:
    """12 to 200 characters (length is what makes a passphrase strong; no composition rules)."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return HASHER.hash(check_policy(password))


def verify_password(password: str, stored: str) -> Verified:
    """Check a password against an Argon2id hash (or a legacy scrypt one, always upgraded)."""
    if stored.startswith("scrypt$"):
        return Verified(ok=_verify_scrypt(password, stored), needs_rehash=True)
    try:
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return Verified(ok=False)
    return Verified(ok=True, needs_rehash=HASHER.check_needs_rehash(stored))


def dummy_verify() -> None:
    """Spend the time of a verification, so unknown usernames are not faster to reject."""
    verify_password("not the password", _dummy_hash())


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash("a password nobody has")


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        kdf = Scrypt(salt=base64.b64decode(salt), length=32, n=int(n), r=int(r), p=int(p))
        kdf.verify(password.encode(), base64.b64decode(digest))
    except (ValueError, InvalidKey):
        return False
    return True
