"""Logging in and out, sessions with idle logoff, lockout; users' credentials.

Who a user is and which role they have are events in the store (``user.created``,
``user.roles_changed``); only the password hash and the optional TOTP secret live in the
``auth_credentials`` table, which nothing else reads. Sessions are server-side so that an
idle session ends (automatic logoff) and a role change revokes them. Failed logins and
lockouts are recorded as events too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.users import ChangeUserRole, CreateUser, RecordLockout, RecordLoginFailure
from events.domain.aggregates import users
from events.domain.envelope import Actor
from services.auth import passwords, tokens, totp
from services.settings import ServiceSettings

DDL = """
CREATE TABLE IF NOT EXISTS auth_credentials (
    user_id uuid PRIMARY KEY,
    password_hash text NOT NULL,
    totp_secret text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS auth_sessions (
    session_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    username text NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (user_id);
CREATE TABLE IF NOT EXISTS auth_failures (
    username text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_failures_username ON auth_failures (username, at);
CREATE TABLE IF NOT EXISTS auth_lockouts (
    username text PRIMARY KEY,
    until timestamptz NOT NULL
);
"""


class AuthenticationFailed(Exception):
    """Wrong credentials, locked account, or an invalid, expired or idle session."""

    def __init__(self, detail: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(detail)
        self.locked_until = locked_until


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
    access_token: str
    expires_in: int


class AuthService:
    """Credentials, sessions and lockout, backed by PostgreSQL and the event store."""

    def __init__(
        self, store: ClinicalStore, pool: ConnectionPool, settings: ServiceSettings
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        with self.pool.connection() as conn:
            conn.execute(DDL)

    def _now(self) -> datetime:
        return self.store.clock()

    # -- administration --------------------------------------------------------------------
    def create_user(
        self,
        ctx: CommandContext,
        username: str,
        display_name: str,
        role: str,
        password: str,
        totp_secret: str | None = None,
    ) -> CommandResult:
        """Record ``user.created`` in the store, then keep the password hash."""
        if len(password) < 12:
            raise ValueError("password must have at least 12 characters")
        result = self.store.create_user(ctx, CreateUser(username, display_name, role))
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_credentials (user_id, password_hash, totp_secret) "
                "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
                "password_hash = EXCLUDED.password_hash, totp_secret = EXCLUDED.totp_secret, "
                "updated_at = now()",
                (result.id, passwords.hash_password(password), totp_secret),
            )
        return result

    def set_password(self, user_id: UUID, password: str) -> None:
        """Replace a user's password (their open sessions end)."""
        if len(password) < 12:
            raise ValueError("password must have at least 12 characters")
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_credentials (user_id, password_hash) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "updated_at = now()",
                (user_id, passwords.hash_password(password)),
            )
            conn.execute("UPDATE auth_sessions SET revoked = true WHERE user_id = %s", (user_id,))

    def change_role(self, ctx: CommandContext, user_id: UUID, role: str) -> CommandResult:
        result = self.store.change_user_role(ctx, ChangeUserRole(user_id, role))
        with self.pool.connection() as conn:
            conn.execute("UPDATE auth_sessions SET revoked = true WHERE user_id = %s", (user_id,))
        return result

    # -- login -----------------------------------------------------------------------------
    def _locked_until(self, username: str) -> datetime | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT until FROM auth_lockouts WHERE username = %s AND until > %s",
                (username, self._now()),
            ).fetchone()
        return row[0] if row else None

    def _fail(self, username: str) -> AuthenticationFailed:
        now = self._now()
        window_start = now - timedelta(seconds=self.settings.lockout_window_s)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_failures (username, at) VALUES (%s, %s)", (username, now)
            )
            row = conn.execute(
                "SELECT count(*) FROM auth_failures WHERE username = %s AND at > %s",
                (username, window_start),
            ).fetchone()
            failures = int(row[0]) if row else 1
            until = None
            if failures >= self.settings.lockout_threshold:
                until = now + timedelta(seconds=self.settings.lockout_duration_s)
                conn.execute(
                    "INSERT INTO auth_lockouts (username, until) VALUES (%s, %s) "
                    "ON CONFLICT (username) DO UPDATE SET until = EXCLUDED.until",
                    (username, until),
                )
        self.store.record_login_failure(RecordLoginFailure(username, failures))
        if until is not None:
            self.store.record_lockout(RecordLockout(username, until))
            return AuthenticationFailed(
                "account locked after repeated failures", locked_until=until
            )
        return AuthenticationFailed("incorrect username or password")

    def login(self, username: str, password: str, otp: str | None = None) -> IssuedToken:
        username = username.strip().lower()
        locked = self._locked_until(username)
        if locked is not None:
            raise AuthenticationFailed(
                "account locked after repeated failures", locked_until=locked
            )
        user_id = self.store.user_id_for(username)
        user = self.store.load(user_id, users.evolve)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT password_hash, totp_secret FROM auth_credentials WHERE user_id = %s",
                (user_id,),
            ).fetchone()
        if user is None or row is None:
            passwords.dummy_verify()
            raise self._fail(username)
        password_hash, totp_secret = row
        if not passwords.verify_password(password, password_hash):
            raise self._fail(username)
        if totp_secret and (otp is None or not totp.verify(totp_secret, otp, time.time())):
            raise self._fail(username)
        now = self._now()
        session_id = uuid4()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_sessions (session_id, user_id, username, role, created_at, "
                "last_seen) VALUES (%s, %s, %s, %s, %s, %s)",
                (session_id, user_id, user.username, user.role, now, now),
            )
            conn.execute("DELETE FROM auth_failures WHERE username = %s", (username,))
        expires = now.timestamp() + self.settings.token_ttl_s
        token = tokens.issue(
            self.settings.token_secret, tokens.TokenClaims(session_id, user_id, expires)
        )
        return IssuedToken(token, self.settings.token_ttl_s)

    def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token; ends sessions idle for longer than allowed."""
        now = self._now()
        try:
            claims = tokens.verify(self.settings.token_secret, token, now.timestamp())
        except tokens.InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from exc
        idle_limit = now - timedelta(seconds=self.settings.idle_timeout_s)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT username, role, last_seen FROM auth_sessions WHERE session_id = %s "
                "AND user_id = %s AND NOT revoked AND last_seen > %s",
                (claims.session_id, claims.user_id, idle_limit),
            ).fetchone()
            if row is None:
                conn.execute(
                    "UPDATE auth_sessions SET revoked = true WHERE session_id = %s",
                    (claims.session_id,),
                )
                raise AuthenticationFailed("session ended (logged off after inactivity or revoked)")
            # Activity is written at most every tenth of the idle limit, so most requests cost
            # no commit; an idle session then ends after 90 to 100% of the limit.
            if row[2] <= now - timedelta(seconds=self.settings.idle_timeout_s / 10):
                conn.execute(
                    "UPDATE auth_sessions SET last_seen = %s WHERE session_id = %s",
                    (now, claims.session_id),
                )
        return Principal(claims.user_id, row[0], row[1], claims.session_id)

    def logout(self, principal: Principal) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_sessions SET revoked = true WHERE session_id = %s",
                (principal.session_id,),
            )
