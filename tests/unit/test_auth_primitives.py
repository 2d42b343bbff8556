"""Passwords, tokens, TOTP and the refusal of placeholder secrets outside development."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import ValidationError

from services.auth import passwords, tokens, totp
from services.settings import ServiceSettings


def test_passwords_are_salted_scrypt_hashes_that_verify_only_the_right_password() -> None:
    first, second = (
        passwords.hash_password("correct horse"),
        passwords.hash_password("correct horse"),
    )
    assert first.startswith("scrypt$") and first != second
    assert passwords.verify_password("correct horse", first)
    assert not passwords.verify_password("wrong horse", first)
    assert not passwords.verify_password("correct horse", "md5$abc")


def test_a_token_is_refused_when_forged_tampered_or_expired() -> None:
    claims = tokens.TokenClaims(uuid.uuid4(), uuid.uuid4(), time.time() + 60)
    token = tokens.issue("s" * 40, claims)

    assert tokens.verify("s" * 40, token, time.time()) == claims
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("t" * 40, token, time.time())
    body, signature = token.split(".")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("s" * 40, body[:-2] + "xx." + signature, time.time())
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("s" * 40, token, time.time() + 120)


def test_totp_matches_the_rfc_6238_test_vector_and_tolerates_one_step_of_drift() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s → 94287082 (8 digits)
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp.code_at(secret, 59) == "287082"
    assert totp.verify(secret, totp.code_at(secret, 1_000_000), 1_000_000 + 30)
    assert not totp.verify(secret, totp.code_at(secret, 1_000_000), 1_000_000 + 90)


def test_settings_refuse_placeholder_secrets_outside_development() -> None:
    with pytest.raises(ValidationError, match="TOKEN_SECRET"):
        ServiceSettings(environment="production")
    with pytest.raises(ValidationError, match="database password"):
        ServiceSettings(
            environment="production",
            token_secret="x" * 40,
            database_url="postgresql://backbone:backbone@db:5432/backbone",
        )
    assert (
        ServiceSettings(
            environment="production",
            token_secret="x" * 40,
            postgres_password="s3cret-s3cret",
            database_url="postgresql://backbone:s3cret-s3cret@db:5432/backbone",
        ).environment
        == "production"
    )
