"""Waking the relay when the store commits: PostgreSQL LISTEN on the store's channel.

Every insert transaction of the store sends ``NOTIFY <channel>``; the relay, idle, waits on
it instead of sleeping, so a new event goes out within milliseconds of its commit. The wait
still times out (the relay's poll interval) and a lost connection falls back to sleeping
until it can listen again: a missed notification delays an event, never loses it.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
STOP_CHECK_S = 0.25


class StoreWakeup:
    """Waits for the store's commit notifications, up to a timeout."""

    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _listening(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._conn = conn
        return self._conn

    def wait(self, timeout_s: float, stop: threading.Event) -> None:
        """Return on the next commit notification, after ``timeout_s``, or soon after stop."""
        deadline = time.monotonic() + timeout_s
        try:
            conn = self._listening()
            while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
                for _ in conn.notifies(timeout=min(remaining, STOP_CHECK_S), stop_after=1):
                    return
        except psycopg.Error as exc:
            log.warning(
                "cannot listen for commits; polling",
                extra={"fields": {"error": type(exc).__name__}},
            )
            self.close()
            stop.wait(timeout_s)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
