"""AuthService against real PostgreSQL: throttling under concurrency, the second factor,
password upgrades, deactivation and session revocation."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.settings import StoreSettings
from services.auth import totp
from services.auth.errors import AuthenticationFailed, CurrentPasswordWrong
from services.auth.service import AuthService, Principal
from services.auth.throttle import LoginThrottled
from services.bootstrap import service_pool
from services.settings import ServiceSettings

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
ADMIN = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000aa"), role="admin")
SECOND_ADMIN = Actor(user_id=UUID("00000000-0000-4000-8000-0000000000ab"), role="admin")
WORKSTATION, ATTACKER = "10.1.2.3", "198.51.100.66"


class Clock:
    """The store's clock, moved by hand (delays and TOTP steps follow it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def pool(store_settings: StoreSettings) -> Iterator[ConnectionPool]:
    pool = service_pool(store_settings, max_size=12)
    yield pool
    pool.close()


@pytest.fixture
def clock(pg_store: ClinicalStore) -> Clock:
    clock = Clock()
    pg_store.clock = clock
    return clock


def auth_service(
    store: ClinicalStore, pool: ConnectionPool, address_limit: int = 1000
) -> AuthService:
    settings = ServiceSettings(
        lockout_threshold=5, login_delay_base_s=30, login_address_limit=address_limit
    )
    return AuthService(store, pool, settings)


@pytest.fixture
def auth(pg_store: ClinicalStore, pool: ConnectionPool, clock: Clock) -> AuthService:
    del clock  # installed first: the service reads the store's clock
    return auth_service(pg_store, pool)


def create(auth: AuthService, username: str, role: str = "nurse") -> tuple[UUID, str | None]:
    """An account; a privileged one is approved by a second administrator."""
    created = auth.create_user(
        CommandContext(actor=ADMIN), username, username.title(), role, PASSWORD
    )
    if created.pending_approval:
        auth.approve_user(CommandContext(actor=SECOND_ADMIN), created.id)
    return created.id, created.totp_secret


def failures_of(pool: ConnectionPool, username: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM auth_failures WHERE username = %s", (username,)
        ).fetchone()
    return int(row[0]) if row else 0


def event_types(store: ClinicalStore) -> list[str]:
    return [e.header.event_type for p in store.event_log.pages() for e in p.events]


def principal(auth: AuthService, token: str) -> Principal:
    return auth.authenticate(token)


def name() -> str:
    return f"it{secrets.token_hex(4)}.user"


def test_forty_parallel_wrong_passwords_check_at_most_the_threshold(
    auth: AuthService, pool: ConnectionPool, pg_store: ClinicalStore
) -> None:
    username = name()
    create(auth, username)

    def guess(i: int) -> str:
        try:
            auth.login(username, f"wrong guess number {i}", client=ATTACKER)
        except LoginThrottled as held:
            return f"held {held.status}"
        except AuthenticationFailed:
            return "refused"
        return "in"

    with ThreadPoolExecutor(max_workers=40) as workers:
        answers = list(workers.map(guess, range(40)))

    checked = failures_of(pool, username)
    assert checked <= 5 and "in" not in answers
    assert answers.count("held 423") >= 40 - 5
    assert event_types(pg_store).count("auth.login_failed") == checked
    assert "auth.locked_out" in event_types(pg_store)
    with pytest.raises(LoginThrottled):  # the attacker's address is held, even for the truth
        auth.login(username, PASSWORD, client=ATTACKER)
    # ... but the clinician at their own workstation is not locked out
    assert auth.login(username, PASSWORD, client=WORKSTATION).access_token


def test_delays_grow_per_username_and_address_and_a_success_forgets_them(
    auth: AuthService, clock: Clock
) -> None:
    username = name()
    create(auth, username)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed) as refused:
            auth.login(username, "not the password", client=ATTACKER)
        assert not isinstance(refused.value, LoginThrottled)
    with pytest.raises(LoginThrottled) as fifth:
        auth.login(username, "not the password", client=ATTACKER)
    assert (fifth.value.status, fifth.value.retry_after_s) == (423, 30)

    clock.advance(31)
    with pytest.raises(LoginThrottled) as sixth:  # checked, wrong, and now 60 s
        auth.login(username, "not the password", client=ATTACKER)
    assert sixth.value.retry_after_s == 60
    clock.advance(31)
    with pytest.raises(LoginThrottled):
        auth.login(username, PASSWORD, client=ATTACKER)
    clock.advance(30)
    assert auth.login(username, PASSWORD, client=ATTACKER).access_token
    with pytest.raises(AuthenticationFailed) as fresh:  # the count started again
        auth.login(username, "not the password", client=ATTACKER)
    assert not isinstance(fresh.value, LoginThrottled)


def test_one_address_spraying_many_usernames_is_limited_and_alerted(
    pg_store: ClinicalStore, pool: ConnectionPool, clock: Clock
) -> None:
    auth = auth_service(pg_store, pool, address_limit=3)
    victim = name()
    create(auth, victim)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            auth.login(name(), "spray spray spray", client=ATTACKER)

    with pytest.raises(LoginThrottled) as limited:
        auth.login(victim, PASSWORD, client=ATTACKER)

    assert limited.value.status == 429 and 0 < limited.value.retry_after_s <= 15 * 60
    assert event_types(pg_store).count("auth.login_throttled") == 1
    assert auth.login(victim, PASSWORD, client=WORKSTATION).access_token
    clock.advance(15 * 60 + 1)
    assert auth.login(victim, PASSWORD, client=ATTACKER).access_token


def test_an_old_scrypt_hash_is_upgraded_to_argon2id_at_the_next_login(
    auth: AuthService, pool: ConnectionPool
) -> None:
    username = name()
    user_id, _ = create(auth, username)
    salt = secrets.token_bytes(16)
    digest = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(PASSWORD.encode())
    old = f"scrypt$32768$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    with pool.connection() as conn:
        conn.execute(
            "UPDATE auth_credentials SET password_hash = %s WHERE user_id = %s", (old, user_id)
        )

    def stored() -> str:
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT password_hash FROM auth_credentials WHERE user_id = %s", (user_id,)
            ).fetchone()
        assert row is not None
        return str(row[0])

    with pytest.raises(AuthenticationFailed):
        auth.login(username, "not the password", client=WORKSTATION)
    assert stored() == old
    auth.login(username, PASSWORD, client=WORKSTATION)
    assert stored().startswith("$argon2id$")
    assert auth.login(username, PASSWORD, client=WORKSTATION).access_token


def test_admin_accounts_get_a_sealed_totp_secret_and_each_code_works_once(
    auth: AuthService, pool: ConnectionPool, clock: Clock
) -> None:
    username = name()
    user_id, secret = create(auth, username, role="admin")
    assert secret is not None
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT totp_secret FROM auth_credentials WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row is not None and row[0].startswith("v1:") and secret not in row[0]

    code = totp.code_at(secret, clock.now.timestamp())
    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, client=WORKSTATION)  # an admin always needs the code
    assert auth.login(username, PASSWORD, code, client=WORKSTATION).access_token
    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, code, client=WORKSTATION)  # replayed within its 30 s
    clock.advance(30)
    fresh = totp.code_at(secret, clock.now.timestamp())
    assert auth.login(username, PASSWORD, fresh, client=WORKSTATION).access_token


def test_a_non_ascii_code_is_a_counted_failure_not_an_error(
    auth: AuthService, pool: ConnectionPool
) -> None:
    username = name()
    create(auth, username, role="compliance")

    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, "é12345", client=WORKSTATION)

    assert failures_of(pool, username) == 1


def test_a_secret_kept_in_clear_by_an_earlier_version_is_sealed_at_login(
    auth: AuthService, pool: ConnectionPool, clock: Clock
) -> None:
    username, secret = name(), totp.new_secret()
    user_id = auth.create_user(
        CommandContext(actor=ADMIN), username, "Old", "nurse", PASSWORD, secret
    ).id
    with pool.connection() as conn:
        conn.execute(
            "UPDATE auth_credentials SET totp_secret = %s WHERE user_id = %s", (secret, user_id)
        )

    auth.login(username, PASSWORD, totp.code_at(secret, clock.now.timestamp()), WORKSTATION)

    with pool.connection() as conn:
        row = conn.execute(
            "SELECT totp_secret FROM auth_credentials WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row is not None and row[0].startswith("v1:")


def test_a_deactivated_user_is_logged_out_at_once_and_cannot_log_in(
    auth: AuthService, pg_store: ClinicalStore
) -> None:
    username = name()
    user_id, _ = create(auth, username)
    token = auth.login(username, PASSWORD, client=WORKSTATION).access_token
    assert principal(auth, token).user_id == user_id

    auth.deactivate_user(CommandContext(actor=ADMIN, reason="left the hospital"), user_id)

    with pytest.raises(AuthenticationFailed):
        auth.authenticate(token)
    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, client=WORKSTATION)
    assert "user.deactivated" in event_types(pg_store)


def test_changing_a_password_ends_the_other_sessions_and_checks_the_current_one(
    auth: AuthService, pool: ConnectionPool
) -> None:
    username = name()
    create(auth, username)
    here_token = auth.login(username, PASSWORD, client=WORKSTATION).access_token
    here = principal(auth, here_token)
    elsewhere = auth.login(username, PASSWORD, client=ATTACKER).access_token

    with pytest.raises(CurrentPasswordWrong):
        auth.change_password(here, "not the password", "a brand new passphrase", WORKSTATION)
    assert failures_of(pool, username) == 1
    auth.change_password(here, PASSWORD, "a brand new passphrase", WORKSTATION)

    assert auth.authenticate(here_token).session_id == here.session_id  # this one stays
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(elsewhere)
    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, client=WORKSTATION)
    assert auth.login(username, "a brand new passphrase", client=WORKSTATION).access_token


def test_an_administrator_can_end_every_session_of_a_user(
    auth: AuthService, pg_store: ClinicalStore
) -> None:
    username = name()
    user_id, _ = create(auth, username)
    tokens = [auth.login(username, PASSWORD, client=WORKSTATION).access_token for _ in range(2)]

    auth.revoke_sessions(CommandContext(actor=SYSTEM_ACTOR, reason="stolen laptop"), user_id)

    for token in tokens:
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(token)
    assert auth.login(username, PASSWORD, client=WORKSTATION).access_token
    assert "user.sessions_revoked" in event_types(pg_store)


def test_becoming_compliance_without_a_secret_generates_one_and_requires_it(
    auth: AuthService, clock: Clock
) -> None:
    username = name()
    user_id, secret = create(auth, username)
    assert secret is None

    changed = auth.change_role(CommandContext(actor=ADMIN), user_id, "compliance")
    assert changed.pending_approval
    auth.approve_user(CommandContext(actor=SECOND_ADMIN), user_id)

    assert changed.totp_secret is not None
    with pytest.raises(AuthenticationFailed):
        auth.login(username, PASSWORD, client=WORKSTATION)
    code = totp.code_at(changed.totp_secret, clock.now.timestamp())
    assert auth.login(username, PASSWORD, code, client=WORKSTATION).access_token
