"""Server-side sessions behind opaque bearer tokens: idle logoff, expiry, revocation.

A request's token is looked up by its hash together with its user's credentials row, so a
deactivated user's sessions stop at once, whatever their state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from psycopg_pool import ConnectionPool

from services.auth import tokens

DDL = """
CREATE TABLE IF NOT EXISTS auth_sessions (
    session_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    username text NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false
);
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS token_hash text;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS expires_at timestamptz;
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (user_id);
CREATE UNIQUE INDEX IF NOT EXISTS auth_sessions_token ON auth_sessions (token_hash);
"""

FIND = """
SELECT s.session_id, s.user_id, s.username, s.role, s.last_seen
FROM auth_sessions s JOIN auth_credentials c ON c.user_id = s.user_id
WHERE s.token_hash = %(digest)s AND NOT s.revoked AND NOT c.disabled
  AND s.last_seen > %(idle_limit)s AND s.expires_at > %(now)s
"""


@dataclass(frozen=True)
class Session:
    """A live session: whose, with which role, when last used."""

    session_id: UUID
    user_id: UUID
    username: str
    role: str
    last_seen: datetime


class Sessions:
    """The ``auth_sessions`` table."""

    def __init__(self, pool: ConnectionPool, ttl_s: int, idle_timeout_s: int) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self.idle_timeout_s = idle_timeout_s

    def open(self, user_id: UUID, username: str, role: str, now: datetime) -> str:
        """A new session; the token (only its hash is kept)."""
        new = tokens.new_token()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_sessions (session_id, user_id, username, role, created_at, "
                "last_seen, token_hash, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    uuid4(),
                    user_id,
                    username,
                    role,
                    now,
                    now,
                    new.digest,
                    now + timedelta(seconds=self.ttl_s),
                ),
            )
        return new.token

    def find(self, token: str, now: datetime) -> Session | None:
        """The live session of a token; records activity at most every tenth of the idle
        limit (most requests cost no commit; an idle session ends after 90 to 100% of it)."""
        if not tokens.plausible(token):
            return None
        idle_limit = now - timedelta(seconds=self.idle_timeout_s)
        with self.pool.connection() as conn:
            row = conn.execute(
                FIND, {"digest": tokens.digest(token), "idle_limit": idle_limit, "now": now}
            ).fetchone()
            if row is None:
                return None
            session = Session(*row)
            if session.last_seen <= now - timedelta(seconds=self.idle_timeout_s / 10):
                conn.execute(
                    "UPDATE auth_sessions SET last_seen = %s WHERE session_id = %s",
                    (now, session.session_id),
                )
        return session

    def revoke(self, session_id: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_sessions SET revoked = true WHERE session_id = %s", (session_id,)
            )

    def revoke_user(self, user_id: UUID, keep: UUID | None = None) -> int:
        """End a user's open sessions (but ``keep``); how many were open."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE auth_sessions SET revoked = true WHERE user_id = %s AND NOT revoked "
                "AND session_id IS DISTINCT FROM %s",
                (user_id, keep),
            )
            return max(cursor.rowcount, 0)
