"""One active relay per store: a PostgreSQL session-level advisory lock on a connection of
its own, and each relay process's row (active, standby, …) beside the checkpoint.

Two relays may run against one store. The one whose session holds the lock publishes; the
other stands by and tries again every ``standby_poll_s``. A session-level lock goes with its
session, so a relay that dies (SIGKILL, crash; a vanished host once the server's keepalive
gives up on it) hands over without a manual step. Before each batch it publishes, the active
relay asks its own session whether it still holds the lock, and that question is its
heartbeat (``updated_at`` of its row); a lock connection lost (PostgreSQL restarted, the
backend terminated) means another relay may lead already, and it steps down.

A batch sent just before the lock was lost still reaches Kafka within the publisher's flush
timeout. So a new leader first waits until every other relay's last heartbeat as active is
``takeover_grace_s`` old (nothing, after a clean stop or a first start): two relays never
publish at once, unless a process stalls longer than that between its check and its send.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)
# Keepalives on the lock connection, both ends: a silent network ends the session (and so
# the lock) within seconds instead of the kernel's two hours.
CLIENT_KEEPALIVE = (
    "connect_timeout=5 keepalives=1 keepalives_idle=5 keepalives_interval=2 "
    "keepalives_count=3 tcp_user_timeout=10000"
)
SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)
# This process's row, created if missing, written only if ``held``.
UPSERT = """
INSERT INTO relay_checkpoints (name, state) SELECT %s, %s WHERE {held}
ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = now()"""
HOLDS = """EXISTS (
    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
    AND classid = %s AND objid = %s AND objsubid = 1 AND granted
)"""
HEARTBEAT = UPSERT.format(held=HOLDS)
REPORT = UPSERT.format(held="true")
# Seconds until every other relay's last heartbeat as active is ``grace`` old.
GRACE_LEFT = """
SELECT coalesce(extract(epoch FROM max(updated_at) + make_interval(secs => %s) - now()), 0)
FROM relay_checkpoints WHERE starts_with(name, %s) AND name <> %s AND state = 'active'"""
INSTANCES = """
SELECT name, state, updated_at, extract(epoch FROM now() - updated_at)
FROM relay_checkpoints WHERE starts_with(name, %s) ORDER BY name"""


class LeadershipLost(Exception):
    """This relay's session no longer holds the relay lock: another relay may lead."""


def lock_key(name: str) -> int:
    """The advisory lock (one bigint) of the relay named ``name`` (its checkpoint name)."""
    digest = hashlib.blake2b(f"relay:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def instance_name(name: str, instance: str) -> str:
    """The row of one relay process beside the checkpoint row ``name``."""
    return f"{name}@{instance}"


@dataclass(frozen=True)
class RelayInstance:
    """One relay process as its row says: ``active``, ``standby``, ``database_unreachable``,
    ``stopped`` or ``gone`` (an active one that died; the next leader marks it)."""

    instance: str
    state: str
    updated_at: datetime
    age_s: float


def relay_instances(pool: ConnectionPool, name: str) -> list[RelayInstance]:
    """The relay processes of checkpoint ``name`` that have run, read only."""
    prefix = instance_name(name, "")
    with pool.connection() as conn:
        exists = conn.execute("SELECT to_regclass('relay_checkpoints')").fetchone()
        if not exists or exists[0] is None:
            return []
        rows = conn.execute(INSTANCES, (prefix,)).fetchall()
    return [RelayInstance(r[0][len(prefix) :], r[1], r[2], float(r[3])) for r in rows]


class Leadership:
    """This relay's claim on the lock of checkpoint ``name``, on a connection of its own.

    Every method may raise the driver's connection errors (the database is unreachable);
    ``verify`` turns them into ``LeadershipLost``, as a lost session lost the lock."""

    def __init__(
        self, database_url: str, name: str, instance: str, takeover_grace_s: float
    ) -> None:
        self.database_url = database_url
        self.name = name
        self.row = instance_name(name, instance)
        self.takeover_grace_s = takeover_grace_s
        self.key = lock_key(name)
        # How pg_locks shows a bigint advisory lock: its high and low 32 bits, unsigned.
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        self._locks_row = (unsigned >> 32, unsigned & 0xFFFF_FFFF)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.held = False

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conninfo = make_conninfo(self.database_url, **conninfo_to_dict(CLIENT_KEEPALIVE))
            conn = psycopg.connect(conninfo, autocommit=True)
            for statement in SERVER_KEEPALIVE:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def acquire(self) -> bool:
        """Try once to take the lock; False (and this row says ``standby``) if another
        relay's session holds it."""
        if self.held:
            return True
        try:
            conn = self._connection()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self.held = bool(row and row[0])
            if not self.held:
                conn.execute(REPORT, (self.row, "standby"))
        except psycopg.Error:
            self.close()
            raise
        if self.held:
            self.verify()
        return self.held

    def grace_left_s(self) -> float:
        """Seconds a new leader waits before it publishes: until the other relays' last
        heartbeats as active are ``takeover_grace_s`` old."""
        row = (
            self._connection()
            .execute(GRACE_LEFT, (self.takeover_grace_s, instance_name(self.name, ""), self.row))
            .fetchone()
        )
        return max(float(str(row[0])), 0.0) if row else 0.0

    def mark_others_gone(self) -> None:
        """After the grace: the rows of relays that were active and died say so."""
        self._connection().execute(
            "UPDATE relay_checkpoints SET state = 'gone' "
            "WHERE starts_with(name, %s) AND name <> %s AND state = 'active'",
            (instance_name(self.name, ""), self.row),
        )

    def verify(self) -> None:
        """Raise ``LeadershipLost`` unless this session still holds the lock; it is also
        this relay's heartbeat as active."""
        if not self.held or self._conn is None:
            raise LeadershipLost("this relay does not hold the relay lock")
        try:
            done = self._conn.execute(HEARTBEAT, (self.row, "active", *self._locks_row))
        except psycopg.Error as exc:
            self.close()
            raise LeadershipLost(f"the lock connection failed: {type(exc).__name__}") from exc
        if done.rowcount != 1:
            self.close()
            raise LeadershipLost("this session no longer holds the relay lock")

    def report(self, state: str) -> None:
        """This process's row says ``state``, if the database can be reached (best effort:
        the row is for people, the lock is what counts)."""
        try:
            self._connection().execute(REPORT, (self.row, state))
        except psycopg.Error:
            self.close()

    def release(self) -> None:
        """Give the lock up (a clean stop): a standby takes over without waiting."""
        if self.held and self._conn is not None and not self._conn.closed:
            # An error means the session is gone, and the lock with it.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self.held = False

    def close(self) -> None:
        """Drop the lock connection (and the lock, with the session)."""
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
