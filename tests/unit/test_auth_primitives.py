"""Passwords, tokens, TOTP, sealed secrets, client addresses, and the refusal of placeholder
secrets outside development."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import ValidationError

from services.api.schemas.auth import UserCreate
from services.auth import passwords, tokens, totp
from services.auth.addresses import client_address
from services.auth.sealing import SecretBox, UnreadableSecret, is_sealed
from services.auth.service import NOT_A_USERNAME, login_name
from services.auth.throttle import LoginThrottled
from services.settings import ServiceSettings

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238 appendix B: "12345678901234567890"


def scrypt_hash(password: str) -> str:
    """A password hash as the previous version stored it."""
    salt = secrets.token_bytes(16)
    digest = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(password.encode())
    encode = base64.b64encode
    return f"scrypt${2**15}$8$1${encode(salt).decode()}${encode(digest).decode()}"


def test_passwords_are_salted_argon2id_hashes_that_verify_only_the_right_password() -> None:
    first = passwords.hash_password("correct horse battery")
    second = passwords.hash_password("correct horse battery")

    assert first.startswith("$argon2id$") and first != second
    assert passwords.verify_password("correct horse battery", first) == passwords.Verified(True)
    assert not passwords.verify_password("wrong horse battery", first).ok
    assert not passwords.verify_password("correct horse battery", "md5$abc").ok


def test_an_old_scrypt_hash_still_verifies_and_asks_to_be_upgraded() -> None:
    old = scrypt_hash("correct horse battery")

    assert passwords.verify_password("correct horse battery", old) == passwords.Verified(
        ok=True, needs_rehash=True
    )
    assert not passwords.verify_password("wrong horse battery", old).ok
    assert not passwords.verify_password("correct horse battery", "scrypt$1$2$x").ok


def test_passwords_shorter_than_12_characters_are_refused() -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.hash_password("short")
    with pytest.raises(passwords.WeakPassword):
        passwords.hash_password("x" * 201)


def test_a_session_token_is_random_and_only_its_hash_is_kept() -> None:
    first, second = tokens.new_token(), tokens.new_token()

    assert first.token != second.token and len(first.token) >= 43
    assert first.digest == tokens.digest(first.token) != first.token
    assert len(first.digest) == 64
    assert not tokens.plausible("é" * 10) and not tokens.plausible("x" * 101)


def test_totp_matches_the_rfc_6238_test_vector_and_tolerates_one_step_of_drift() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s → 94287082 (8 digits)
    assert totp.code_at(RFC_SECRET, 59) == "287082"
    assert totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, 1_000_000), 1_000_000 + 30)
    assert not totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, 1_000_000), 1_000_000 + 90)


def test_a_code_reports_the_time_step_it_matched_so_that_reuse_can_be_refused() -> None:
    now = 1_000_000.0
    code = totp.code_at(RFC_SECRET, now)

    assert totp.matching_step(RFC_SECRET, code, now) == totp.step_at(now)
    assert totp.matching_step(RFC_SECRET, code, now + 30) == totp.step_at(now)
    assert totp.matching_step(RFC_SECRET, f" {code} ", now) == totp.step_at(now)


@pytest.mark.parametrize(
    "code",
    [
        "é12345",
        "\uff12\uff18\uff17\uff10\uff18\uff12",  # full-width digits NFKC would accept
        "28708",
        "2870822",
        "",
        "28 082",
        None,
    ],
)
def test_anything_but_six_ascii_digits_is_simply_a_wrong_code(code: str | None) -> None:
    assert totp.matching_step(RFC_SECRET, code, 59) is None


@pytest.mark.parametrize(
    "secret",
    [
        "A" * 17,  # 85 bits: not a whole number of base32 bytes
        "A" * 16,  # 80 bits: shorter than the RFC's 128
        "A" * 20,  # 100 bits
        "B" * 26,  # 26 characters, but stray trailing bits
        "jbswy3dpehpk3pxpjbswy3dpeh",  # lower case
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX=",  # padding
        "JBSWY3DPEHPK3PXPJBSWY3DPEH01",  # 0 and 1 are not base32
    ],
)
def test_a_totp_secret_must_be_real_base32_of_at_least_128_bits(secret: str) -> None:
    with pytest.raises(totp.InvalidSecret):
        totp.validate_secret(secret)
    with pytest.raises(ValidationError) as refused:
        UserCreate(
            username="dr.okafor",
            display_name="Dr Okafor",
            role="nurse",
            password="a long passphrase here",
            totp_secret=secret,
        )
    assert refused.value.errors()[0]["loc"] == ("totp_secret",)


def test_generated_secrets_are_160_bits_and_work_with_any_valid_length() -> None:
    assert totp.validate_secret(totp.new_secret()) and len(totp.new_secret()) == 32
    for secret in ("A" * 26, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "A" * 56):
        assert totp.code_at(secret, 59).isdigit()


def test_a_sealed_secret_opens_only_for_its_user_under_its_key() -> None:
    box, other_box = SecretBox(secrets.token_bytes(32)), SecretBox(secrets.token_bytes(32))
    owner, stranger = uuid.uuid4(), uuid.uuid4()

    sealed = box.seal(owner, RFC_SECRET)

    assert is_sealed(sealed) and RFC_SECRET not in sealed
    assert box.seal(owner, RFC_SECRET) != sealed  # a fresh nonce each time
    assert box.open(owner, sealed) == RFC_SECRET
    for attempt in (
        lambda: box.open(stranger, sealed),
        lambda: other_box.open(owner, sealed),
        lambda: box.open(owner, sealed[:-4] + "AAAA"),
        lambda: box.open(owner, RFC_SECRET),
    ):
        with pytest.raises(UnreadableSecret):
            attempt()


def test_the_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("203.0.113.5", "198.51.100.7", []) == "203.0.113.5"
    assert client_address("10.0.0.1", "198.51.100.7", ["10.0.0.1"]) == "198.51.100.7"
    # the nearest hop that is not a trusted proxy: a client cannot prepend a made-up address
    assert client_address(
        "10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.2", ["10.0.0.1", "10.0.0.2"]
    ) == ("198.51.100.7")
    assert client_address("10.0.0.1", "not an address", ["10.0.0.1"]) == "10.0.0.1"
    assert client_address("::ffff:0:1", None, []) == "::ffff:0:1"
    assert client_address(None, "198.51.100.7", ["10.0.0.1"]) == "unknown"


def test_login_names_are_normalised_and_garbage_shares_one_bucket() -> None:
    assert login_name("  Dr.House ") == "dr.house"
    assert login_name("x" * 65) == NOT_A_USERNAME
    assert login_name("robert'); DROP TABLE") == NOT_A_USERNAME
    assert login_name("dr\u0000house") == NOT_A_USERNAME


def test_a_throttled_login_says_when_to_come_back_in_whole_seconds() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    held = LoginThrottled("wait", until=now + timedelta(seconds=29.2), now=now, scope="account")
    limited = LoginThrottled("wait", until=now - timedelta(seconds=1), now=now, scope="address")

    assert (held.status, held.retry_after_s) == (423, 30)
    assert (limited.status, limited.retry_after_s) == (429, 1)


def test_settings_refuse_placeholder_secrets_outside_development() -> None:
    with pytest.raises(ValidationError, match="database password"):
        ServiceSettings(environment="production")
    with pytest.raises(ValidationError, match="database password"):
        ServiceSettings(
            environment="production",
            postgres_password="s3cret-s3cret",
            database_url="postgresql://backbone:backbone@db:5432/backbone",
        )
    assert (
        ServiceSettings(
            environment="production",
            postgres_password="s3cret-s3cret",
            database_url="postgresql://backbone:s3cret-s3cret@db:5432/backbone",
        ).environment
        == "production"
    )
