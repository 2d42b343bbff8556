"""Bounds on the work one caller can make the API do: rate limits and read waits.

Rate limits use the ``limits`` library (moving window) keyed by the authenticated user, so
one account cannot sweep the patient search, break the glass in a loop or pull exports as
fast as the server answers. The counters live in process memory: the API is one process
per store (the store library is synchronous, one application instance per process), the
budgets need not survive a restart, and a round trip to PostgreSQL for every counted
request would spend the pool these limits protect. ``limits`` has no PostgreSQL storage;
``BACKBONE_RATE_LIMIT_STORAGE`` can name one it has (``redis://…``) when the API runs as
several processes.

Read waits (``min_position``) are bounded in time by ``BACKBONE_READ_WAIT_TIMEOUT_S`` and in
number by ``BACKBONE_READ_WAIT_MAX_WAITERS``: each waiting read holds a worker thread, so
past that many an extra one answers 503 at once, and other users' reads keep their threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Literal, TypeVar

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from services.settings import ServiceSettings

Bucket = Literal["search", "break_glass", "exports", "denials"]
T = TypeVar("T")


class RateLimited(Exception):
    """The caller spent this bucket's budget; ``retry_after_s`` until it has room again."""

    def __init__(self, bucket: str, limit: str, retry_after_s: int) -> None:
        super().__init__(f"rate limit of {limit} for {bucket.replace('_', '-')} reached")
        self.bucket = bucket
        self.retry_after_s = retry_after_s


class ProjectionBehind(Exception):
    """The read tables have not caught up (yet): try again after ``retry_after_s``."""

    def __init__(self, detail: str, position: int, retry_after_s: int) -> None:
        super().__init__(detail)
        self.position = position
        self.retry_after_s = retry_after_s


class RateLimits:
    """Per-user budgets for the expensive or sensitive routes."""

    def __init__(self, settings: ServiceSettings, storage_uri: str = "memory://") -> None:
        self.items: dict[str, RateLimitItem] = {
            "search": parse(settings.rate_limit_search),
            "break_glass": parse(settings.rate_limit_break_glass),
            "exports": parse(settings.rate_limit_exports),
            "denials": parse(settings.rate_limit_denials),
        }
        self.storage = storage_from_string(storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)

    def hit(self, bucket: Bucket, user: str) -> None:
        """Count one request of ``user`` in ``bucket``, or raise ``RateLimited``."""
        item = self.items[bucket]
        if self.limiter.hit(item, bucket, user):
            return
        reset = self.limiter.get_window_stats(item, bucket, user).reset_time
        raise RateLimited(bucket, str(item), max(1, math.ceil(reset - time.time())))

    def allow(self, bucket: Bucket, key: str) -> bool:
        """Count one use of ``bucket`` by ``key``; False once its budget is spent."""
        return bool(self.limiter.hit(self.items[bucket], bucket, key))

    def close(self) -> None:
        self.storage.reset()


class WaitGate:
    """At most ``capacity`` reads waiting for a projection at once."""

    def __init__(self, capacity: int, timeout_s: float) -> None:
        self._slots = threading.BoundedSemaphore(capacity)
        self.timeout_s = timeout_s

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.timeout_s))

    @contextmanager
    def slot(self, position: Callable[[], int]) -> Iterator[None]:
        """Hold a waiting slot, or raise ``ProjectionBehind`` when all are taken."""
        if not self._slots.acquire(blocking=False):
            raise ProjectionBehind(
                "too many reads are waiting for the projections", position(), self.retry_after_s
            )
        try:
            yield
        finally:
            self._slots.release()


class Cached(Generic[T]):
    """A value computed at most once per ``ttl_s`` however many ask; while one caller
    computes it, the others take the previous value instead of queueing behind."""

    def __init__(self, compute: Callable[[], T], ttl_s: float) -> None:
        self._compute = compute
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = -math.inf

    def get(self) -> T:
        value = self._value
        if value is not None:
            fresh = time.monotonic() - self._at < self._ttl_s
            if fresh or not self._lock.acquire(blocking=False):
                return value
        else:
            self._lock.acquire()  # the very first callers wait for the first value
        try:
            if self._value is None or time.monotonic() - self._at >= self._ttl_s:
                self._value = self._compute()
                self._at = time.monotonic()
            return self._value
        finally:
            self._lock.release()


class Guards:
    """The API process's limits, built with the app (no connections of their own)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.rates = RateLimits(settings, settings.rate_limit_storage)
        self.waits = WaitGate(settings.read_wait_max_waiters, settings.read_wait_timeout_s)

    def close(self) -> None:
        self.rates.close()


class PositionBeyondHead(ValueError):
    """``min_position`` is past the store's newest position: no write answered it."""

    def __init__(self, min_position: int, head: int) -> None:
        super().__init__(f"min_position {min_position} is past the store's newest position")
        self.head = head
