"""Login throttling per (username, client address), and a limit per client address.

Every attempt is counted *before* the password is checked, by one atomic upsert (the row
lock of ``INSERT … ON CONFLICT DO UPDATE`` serialises concurrent attempts): attempt number
``n`` of a (username, address) pair within the window is checked only if that pair is not
held back, and from ``threshold`` on it holds the pair back for ``base · 2^(n - threshold)``
seconds (capped). So 40 parallel guesses check at most ``threshold`` passwords, and an
attacker who does not know the password holds back only their own address: the clinician
logs in from their workstation as usual. A success forgets the pair.

A client address is also limited to ``address_limit`` attempts per window over all
usernames (password spraying); past it, it waits for the window to end (429).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from psycopg_pool import ConnectionPool

from services.auth.errors import AuthenticationFailed

DDL = """
CREATE TABLE IF NOT EXISTS auth_login_throttle (
    scope text NOT NULL,
    username text NOT NULL,
    address text NOT NULL,
    failures integer NOT NULL,
    last_at timestamptz NOT NULL,
    blocked_until timestamptz,
    PRIMARY KEY (scope, username, address)
);
CREATE TABLE IF NOT EXISTS auth_address_throttle (
    scope text NOT NULL,
    address text NOT NULL,
    attempts integer NOT NULL,
    window_start timestamptz NOT NULL,
    PRIMARY KEY (scope, address)
);
CREATE TABLE IF NOT EXISTS auth_failures (
    username text NOT NULL,
    at timestamptz NOT NULL
);
ALTER TABLE auth_failures ADD COLUMN IF NOT EXISTS client_address text;
CREATE INDEX IF NOT EXISTS auth_failures_username ON auth_failures (username, at);
CREATE TABLE IF NOT EXISTS auth_lockouts (
    username text PRIMARY KEY,
    until timestamptz NOT NULL
);
"""

# The pair's attempt number, restarting at 1 after a quiet window.
_NUMBER = "CASE WHEN t.last_at <= %(expired)s THEN 1 ELSE t.failures + 1 END"
_DELAY = (
    "make_interval(secs => least(%(cap)s, %(base)s * power(2, least({n} - %(threshold)s, 30))))"
)
RESERVE_PAIR = f"""
INSERT INTO auth_login_throttle AS t (scope, username, address, failures, last_at, blocked_until)
VALUES (%(scope)s, %(username)s, %(address)s, 1, %(now)s,
        CASE WHEN 1 >= %(threshold)s THEN %(now)s + {_DELAY.format(n="1")} END)
ON CONFLICT (scope, username, address) DO UPDATE SET
    failures = {_NUMBER},
    last_at = %(now)s,
    blocked_until = CASE WHEN {_NUMBER} >= %(threshold)s
                         THEN %(now)s + {_DELAY.format(n=_NUMBER)} END
WHERE t.blocked_until IS NULL OR t.blocked_until <= %(now)s
RETURNING failures, blocked_until
"""  # noqa: S608 - only constants are interpolated; every value is a parameter
RESERVE_ADDRESS = """
INSERT INTO auth_address_throttle AS t (scope, address, attempts, window_start)
VALUES (%(scope)s, %(address)s, 1, %(now)s)
ON CONFLICT (scope, address) DO UPDATE SET
    attempts = CASE WHEN t.window_start <= %(expired)s THEN 1 ELSE t.attempts + 1 END,
    window_start = CASE WHEN t.window_start <= %(expired)s THEN %(now)s ELSE t.window_start END
RETURNING attempts, window_start
"""


class LoginThrottled(AuthenticationFailed):
    """Refused before any password check: this pair (423) or this address (429) must wait.

    ``newly`` is true for the one attempt that first crossed the address limit (it raises
    the alert)."""

    def __init__(
        self,
        detail: str,
        *,
        until: datetime,
        now: datetime,
        scope: Literal["account", "address"],
        attempts: int = 0,
        newly: bool = False,
    ) -> None:
        super().__init__(detail, locked_until=until)
        self.scope = scope
        self.status = 423 if scope == "account" else 429
        self.retry_after_s = max(1, math.ceil((until - now).total_seconds()))
        self.attempts = attempts
        self.newly = newly


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: its number for the pair, and until when it holds the pair back."""

    username: str
    address: str
    number: int
    holds_until: datetime | None


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many attempts, how long to wait (from the service settings)."""

    threshold: int
    window_s: float
    base_delay_s: float
    max_delay_s: float
    address_limit: int


class LoginThrottle:
    """Counts login attempts in PostgreSQL, per store (``scope``)."""

    def __init__(self, pool: ConnectionPool, scope: str, policy: ThrottlePolicy) -> None:
        self.pool = pool
        self.scope = scope
        self.policy = policy

    def reserve(self, username: str, address: str, now: datetime) -> Attempt:
        """Count an attempt, or raise LoginThrottled without counting it for the pair."""
        p = self.policy
        expired = now - timedelta(seconds=p.window_s)
        params = {"scope": self.scope, "address": address, "now": now, "expired": expired}
        with self.pool.connection() as conn:
            attempts, window_start = _one(conn.execute(RESERVE_ADDRESS, params).fetchone())
            if attempts > p.address_limit:
                raise LoginThrottled(
                    "too many failed logins from this address; try again later",
                    until=window_start + timedelta(seconds=p.window_s),
                    now=now,
                    scope="address",
                    attempts=attempts,
                    newly=attempts == p.address_limit + 1,
                )
            row = conn.execute(
                RESERVE_PAIR,
                {
                    **params,
                    "username": username,
                    "threshold": p.threshold,
                    "base": p.base_delay_s,
                    "cap": p.max_delay_s,
                },
            ).fetchone()
            if row is None:
                held = conn.execute(
                    "SELECT blocked_until FROM auth_login_throttle "
                    "WHERE scope = %s AND username = %s AND address = %s",
                    (self.scope, username, address),
                ).fetchone()
                until = held[0] if held and held[0] else now + timedelta(seconds=1)
                raise LoginThrottled(
                    "too many failed logins for this account from this address; wait or "
                    "log in from another workstation",
                    until=until,
                    now=now,
                    scope="account",
                )
        number, holds_until = row
        return Attempt(username, address, int(number), holds_until)

    def failed(self, attempt: Attempt, now: datetime) -> None:
        """Keep the failure for the compliance alerts (and the hold, if it started one)."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_failures (username, at, client_address) VALUES (%s, %s, %s)",
                (attempt.username, now, attempt.address),
            )
            if attempt.holds_until is not None:
                conn.execute(
                    "INSERT INTO auth_lockouts (username, until) VALUES (%s, %s) "
                    "ON CONFLICT (username) DO UPDATE SET "
                    "until = greatest(auth_lockouts.until, EXCLUDED.until)",
                    (attempt.username, attempt.holds_until),
                )

    def succeeded(self, attempt: Attempt) -> None:
        """Forget the pair's attempts; the address's count gives this attempt back."""
        with self.pool.connection() as conn:
            conn.execute(
                "DELETE FROM auth_login_throttle WHERE scope = %s AND username = %s "
                "AND address = %s",
                (self.scope, attempt.username, attempt.address),
            )
            conn.execute(
                "UPDATE auth_address_throttle SET attempts = greatest(attempts - 1, 0) "
                "WHERE scope = %s AND address = %s",
                (self.scope, attempt.address),
            )


def _one(row: tuple[int, datetime] | None) -> tuple[int, datetime]:
    if row is None:  # pragma: no cover - an upsert with RETURNING always answers a row
        raise RuntimeError("the throttle upsert returned no row")
    return row
