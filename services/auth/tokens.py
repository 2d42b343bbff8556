"""Short-lived signed access tokens (HMAC-SHA256), naming a server-side session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from uuid import UUID


class InvalidToken(Exception):
    """The token is malformed, forged or expired."""


@dataclass(frozen=True)
class TokenClaims:
    """What a token says: which session, which user, until when."""

    session_id: UUID
    user_id: UUID
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, claims: TokenClaims) -> str:
    body = _b64(
        json.dumps(
            {"sid": str(claims.session_id), "uid": str(claims.user_id), "exp": claims.expires_at},
            separators=(",", ":"),
        ).encode()
    )
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify(secret: str, token: str, now: float) -> TokenClaims:
    try:
        body, signature = token.split(".")
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise InvalidToken("bad signature")
        data = json.loads(_unb64(body))
        claims = TokenClaims(UUID(data["sid"]), UUID(data["uid"]), float(data["exp"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed token") from exc
    if claims.expires_at <= now:
        raise InvalidToken("token expired")
    return claims
