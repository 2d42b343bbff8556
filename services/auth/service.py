"""Logging in and out, sessions, throttling, second factor; users' credentials.

Who a user is, their role and whether their account is active are events in the store
(``user.created``, ``user.roles_changed``, ``user.deactivated``, …); only the Argon2id
password hash, the sealed TOTP secret and the last TOTP step used live in the
``auth_credentials`` table, which nothing else reads. Sessions are server-side (idle
logoff, immediate revocation). Failed logins, holds and throttled addresses are recorded as
events too, and kept in ``auth_failures`` / ``auth_lockouts`` for the compliance alerts.
Admin and compliance accounts always need a TOTP code.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.users import (
    ApproveUser,
    ChangeUserRole,
    CreateUser,
    DeactivateUser,
    RecordLockout,
    RecordLoginFailure,
    RecordPasswordChange,
    RecordThrottledAddress,
    RevokeUserSessions,
)
from events.domain.aggregates import users
from events.domain.envelope import Actor
from events.domain.errors import NotFound
from events.store.migrating import create_if_allowed
from services.auth import passwords, totp
from services.auth.addresses import UNKNOWN
from services.auth.errors import AuthenticationFailed, CredentialRefused, CurrentPasswordWrong
from services.auth.sealing import SecretBox, is_sealed
from services.auth.sessions import DDL as SESSIONS_DDL
from services.auth.sessions import Sessions
from services.auth.throttle import DDL as THROTTLE_DDL
from services.auth.throttle import Attempt, LoginThrottle, LoginThrottled, ThrottlePolicy
from services.settings import ServiceSettings

__all__ = ["AuthService", "AuthenticationFailed", "IssuedToken", "LoginThrottled", "Principal"]

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS auth_credentials (
    user_id uuid PRIMARY KEY,
    password_hash text NOT NULL,
    totp_secret text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE auth_credentials ADD COLUMN IF NOT EXISTS totp_last_step bigint;
ALTER TABLE auth_credentials ADD COLUMN IF NOT EXISTS disabled boolean NOT NULL DEFAULT false;
"""
USERNAME = re.compile(r"[a-z0-9._-]{3,64}", re.ASCII)
NOT_A_USERNAME = "(not a username)"
REFUSED = "incorrect username, password or one-time code"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: UUID
    username: str
    role: str
    session_id: UUID

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role)


@dataclass(frozen=True)
class IssuedToken:
    """A bearer token and its lifetime in seconds."""

    access_token: str
    expires_in: int


@dataclass(frozen=True)
class AccountResult:
    """A user command's id and position, a TOTP secret generated for it (shown once), and
    whether it waits for a second administrator's approval."""

    id: UUID
    position: int
    totp_secret: str | None = None
    pending_approval: bool = False


@dataclass(frozen=True)
class _Credentials:
    password_hash: str
    totp_secret: str | None


def login_name(username: str) -> str:
    """The normalised username, or a placeholder for what cannot be one (it still counts)."""
    name = username.strip().lower()
    return name if USERNAME.fullmatch(name) else NOT_A_USERNAME


class AuthService:
    """Credentials, sessions and login throttling, backed by PostgreSQL and the event store."""

    def __init__(
        self, store: ClinicalStore, pool: ConnectionPool, settings: ServiceSettings
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.sessions = Sessions(pool, settings.token_ttl_s, settings.idle_timeout_s)
        policy = ThrottlePolicy(
            threshold=settings.lockout_threshold,
            window_s=settings.lockout_window_s,
            base_delay_s=settings.login_delay_base_s,
            max_delay_s=settings.lockout_duration_s,
            address_limit=settings.login_address_limit,
        )
        self.throttle = LoginThrottle(pool, store.name, policy)
        self._box: SecretBox | None = None
        with self.pool.connection() as conn:
            create_if_allowed(conn, DDL, SESSIONS_DDL, THROTTLE_DDL)

    def _now(self) -> datetime:
        return self.store.clock()

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.for_store(self.store)
        return self._box

    # -- administration --------------------------------------------------------------------
    def create_user(
        self,
        ctx: CommandContext,
        username: str,
        display_name: str,
        role: str,
        password: str,
        totp_secret: str | None = None,
    ) -> AccountResult:
        """Record ``user.created``, then keep the password hash and the sealed TOTP secret;
        an admin or compliance account without a secret gets one (answered once)."""
        password_hash = passwords.hash_password(_policy(password))
        generated = None
        if totp_secret is not None:
            _valid_secret(totp_secret)
        elif role in totp.MFA_ROLES:
            totp_secret = generated = totp.new_secret()
        result = self.store.create_user(ctx, CreateUser(username, display_name, role))
        sealed = self.box.seal(result.id, totp_secret) if totp_secret else None
        with self.pool.connection() as conn:
            inserted = conn.execute(
                "INSERT INTO auth_credentials (user_id, password_hash, totp_secret) "
                "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO NOTHING",
                (result.id, password_hash, sealed),
            ).rowcount
        # A repeated request (same idempotency key) keeps the credentials set the first time.
        user = self.store.load(result.id, users.evolve)
        pending = user is not None and not user.approved
        return AccountResult(result.id, result.position, generated if inserted else None, pending)

    def set_password(self, user_id: UUID, password: str) -> None:
        """Replace a user's password (an operator's reset; their open sessions end)."""
        password_hash = passwords.hash_password(_policy(password))
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_credentials (user_id, password_hash) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "updated_at = now()",
                (user_id, password_hash),
            )
        self.sessions.revoke_user(user_id)

    def reset_totp(self, user_id: UUID) -> str:
        """Give a user a new TOTP secret (an operator's reset); the secret, shown once."""
        secret = totp.new_secret()
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_credentials SET totp_secret = %s, totp_last_step = NULL, "
                "updated_at = now() WHERE user_id = %s",
                (self.box.seal(user_id, secret), user_id),
            )
        self.sessions.revoke_user(user_id)
        return secret

    def change_role(self, ctx: CommandContext, user_id: UUID, role: str) -> AccountResult:
        """A new role; the user's sessions end. Becoming admin or compliance without a TOTP
        secret gives the user one (answered once)."""
        result = self.store.change_user_role(ctx, ChangeUserRole(user_id, role))
        generated = None
        if role in totp.MFA_ROLES and not result.replayed:
            credentials = self._credentials(user_id)
            if credentials is not None and credentials.totp_secret is None:
                generated = self.reset_totp(user_id)
        user = self.store.load(user_id, users.evolve)
        pending = user is not None and user.pending_role is not None
        if not pending:
            self.sessions.revoke_user(user_id)
        return AccountResult(result.id, result.position, generated, pending)

    def approve_user(self, ctx: CommandContext, user_id: UUID) -> CommandResult:
        """A second administrator approves a privileged account or role; the user's open
        sessions end (they log in again with the new role)."""
        result = self.store.approve_user(ctx, ApproveUser(user_id))
        self.sessions.revoke_user(user_id)
        return result

    def deactivate_user(self, ctx: CommandContext, user_id: UUID) -> CommandResult:
        """Record ``user.deactivated`` (with the context's reason); logins stop and every
        session of the user ends at once."""
        result = self.store.deactivate_user(ctx, DeactivateUser(user_id))
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_credentials SET disabled = true, updated_at = now() "
                "WHERE user_id = %s",
                (user_id,),
            )
        self.sessions.revoke_user(user_id)
        return result

    def revoke_sessions(self, ctx: CommandContext, user_id: UUID) -> CommandResult:
        """End every open session of a user (recorded as ``user.sessions_revoked``)."""
        if self.store.load(user_id, users.evolve) is None:
            raise NotFound("user", user_id)
        ended = self.sessions.revoke_user(user_id)
        return self.store.revoke_user_sessions(ctx, RevokeUserSessions(user_id, ended))

    # -- the caller's own account ------------------------------------------------------------
    def change_password(
        self, principal: Principal, current: str, new: str, client: str = UNKNOWN
    ) -> CommandResult:
        """Replace the caller's password (the current one is checked and counted like a
        login); every other session of theirs ends."""
        if current == new:
            raise CredentialRefused("the new password is the current one", field="new_password")
        new_hash = passwords.hash_password(_policy(new))
        attempt = self._reserve(principal.username, client)
        credentials = self._credentials(principal.user_id)
        if (
            credentials is None
            or not passwords.verify_password(current, credentials.password_hash).ok
        ):
            self._record_failure(attempt)
            raise CurrentPasswordWrong()
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_credentials SET password_hash = %s, updated_at = now() "
                "WHERE user_id = %s",
                (new_hash, principal.user_id),
            )
        self.throttle.succeeded(attempt)
        ended = self.sessions.revoke_user(principal.user_id, keep=principal.session_id)
        ctx = CommandContext(actor=principal.actor, reason="password changed by its owner")
        return self.store.record_password_change(
            ctx, RecordPasswordChange(principal.user_id, ended)
        )

    # -- login -----------------------------------------------------------------------------
    def _reserve(self, username: str, client: str) -> Attempt:
        try:
            return self.throttle.reserve(username, client, self._now())
        except LoginThrottled as held:
            if held.newly:
                log.warning("login: a client address is throttled after %d attempts", held.attempts)
                until = held.locked_until or self._now()
                self.store.record_throttled_address(
                    RecordThrottledAddress(client, held.attempts, until)
                )
            raise

    def _record_failure(self, attempt: Attempt) -> None:
        self.throttle.failed(attempt, self._now())
        self.store.record_login_failure(RecordLoginFailure(attempt.username, attempt.number))
        if attempt.holds_until is not None:
            self.store.record_lockout(RecordLockout(attempt.username, attempt.holds_until))

    def _fail(self, attempt: Attempt) -> AuthenticationFailed:
        self._record_failure(attempt)
        if attempt.holds_until is not None:
            return LoginThrottled(
                "too many failed logins for this account from this address",
                until=attempt.holds_until,
                now=self._now(),
                scope="account",
            )
        return AuthenticationFailed(REFUSED)

    def _credentials(self, user_id: UUID) -> _Credentials | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT password_hash, totp_secret FROM auth_credentials WHERE user_id = %s",
                (user_id,),
            ).fetchone()
        return _Credentials(row[0], row[1]) if row else None

    def _totp_secret(self, user_id: UUID, stored: str) -> str | None:
        """The clear secret; one kept in clear by an earlier version is sealed now."""
        if is_sealed(stored):
            return self.box.open(user_id, stored)
        try:
            totp.validate_secret(stored)
        except totp.InvalidSecret:
            log.error("login: a stored TOTP secret is unusable; reset it (backbone demo does)")
            return None
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_credentials SET totp_secret = %s WHERE user_id = %s",
                (self.box.seal(user_id, stored), user_id),
            )
        return stored

    def _second_factor_ok(self, user: users.User, stored: str | None, otp: str | None) -> bool:
        if stored is None:
            return user.role not in totp.MFA_ROLES
        secret = self._totp_secret(user.id, stored)
        step = totp.matching_step(secret, otp, self._now().timestamp()) if secret else None
        if step is None:
            return False
        with self.pool.connection() as conn:  # a code is good once: its step must be new
            used = conn.execute(
                "UPDATE auth_credentials SET totp_last_step = %s WHERE user_id = %s AND "
                "(totp_last_step IS NULL OR totp_last_step < %s) RETURNING user_id",
                (step, user.id, step),
            ).fetchone()
        return used is not None

    def login(
        self, username: str, password: str, otp: str | None = None, client: str = UNKNOWN
    ) -> IssuedToken:
        """A session for the right password (and TOTP code where required), counted per
        (username, client address) before anything is checked."""
        name = login_name(username)
        attempt = self._reserve(name, client)
        user_id = self.store.user_id_for(name)
        user = self.store.load(user_id, users.evolve) if name != NOT_A_USERNAME else None
        credentials = self._credentials(user_id) if user is not None else None
        if user is None or credentials is None:
            passwords.dummy_verify()
            raise self._fail(attempt)
        checked = passwords.verify_password(password, credentials.password_hash)
        if not checked.ok or not user.may_log_in:
            raise self._fail(attempt)
        if not self._second_factor_ok(user, credentials.totp_secret, otp):
            raise self._fail(attempt)
        if checked.needs_rehash:
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE auth_credentials SET password_hash = %s, updated_at = now() "
                    "WHERE user_id = %s",
                    (passwords.hash_password(password), user_id),
                )
        self.throttle.succeeded(attempt)
        token = self.sessions.open(user_id, user.username, user.role, self._now())
        return IssuedToken(token, self.settings.token_ttl_s)

    def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token (not expired, idle, revoked or deactivated)."""
        session = self.sessions.find(token, self._now())
        if session is None:
            raise AuthenticationFailed("session ended (logged off after inactivity or revoked)")
        return Principal(session.user_id, session.username, session.role, session.session_id)

    def logout(self, principal: Principal) -> None:
        self.sessions.revoke(principal.session_id)


def _policy(password: str) -> str:
    try:
        return passwords.check_policy(password)
    except passwords.WeakPassword as exc:
        raise CredentialRefused(str(exc), field="password") from exc


def _valid_secret(secret: str) -> str:
    try:
        return totp.validate_secret(secret)
    except totp.InvalidSecret as exc:
        raise CredentialRefused(str(exc), field="totp_secret") from exc
