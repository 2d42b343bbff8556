"""Idempotency keys (IETF draft): replay a repeated request, refuse a reused key, and say
when the key's first request is still running.

A key is scoped to the caller (``user_id:key``) and carries the fingerprint of the request
it came with (``@command``). The store's unique claim, written in the same transaction as
the events, is what makes a key write once across processes; the in-flight set answers
the draft's ``409`` within a process instead of making the second request wait.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from events.commands.base import CommandContext, CommandResult
from events.domain.errors import IdempotencyKeyReused, RequestInFlight


def replayed(claim: dict[str, Any], ctx: CommandContext) -> CommandResult:
    """The first answer to a repeated request; a key reused for another request is refused."""
    sent_with = claim.get("request")
    if sent_with is not None and sent_with != ctx.request:
        raise IdempotencyKeyReused
    return CommandResult.from_claim(claim)


class KeysInFlight:
    """The keys whose request is running in this process."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str | None) -> Iterator[None]:
        """Run with ``key`` held; a second request with it meanwhile gets ``RequestInFlight``."""
        if key is None:
            yield
            return
        with self._lock:
            if key in self._keys:
                raise RequestInFlight
            self._keys.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard(key)
