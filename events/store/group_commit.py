"""Group commit: concurrent writers share one transaction instead of queueing for the lock.

Every insert into the event store takes the events table's lock (the notification order
must equal the commit order), so writers run one transaction at a time however many there
are. ``GroupCommit`` turns that queue into batches: the first writer to arrive becomes the
leader and writes everything waiting in one transaction; writers arriving meanwhile queue
up and the next leader takes all of them. A lone writer pays nothing extra (no timer,
no background thread), and under load one commit (one WAL flush) serves many commands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Ticket(Generic[T, R]):
    item: T
    outcome: R | BaseException | None = None
    done: bool = False


class GroupCommit(Generic[T, R]):
    """Batches concurrent ``submit`` calls into calls of ``write`` (one per transaction)."""

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R | BaseException]]) -> None:
        self._write = write
        self._ready = threading.Condition()
        self._waiting: list[_Ticket[T, R]] = []
        self._writing = False
        self.batches = 0
        self.items = 0

    @property
    def waiting(self) -> int:
        """How many writers are queued behind the transaction being written."""
        with self._ready:
            return len(self._waiting)

    def submit(self, item: T) -> R:
        """Write ``item`` (alone or with others); its result, or raise its error."""
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._ready:
            self._waiting.append(ticket)
            while self._writing and not ticket.done:
                self._ready.wait()
            batch: list[_Ticket[T, R]] = []
            if not ticket.done:
                self._writing = True
                batch, self._waiting = self._waiting, []
        if batch:
            self._lead(batch)
        if isinstance(ticket.outcome, BaseException):
            raise ticket.outcome
        return ticket.outcome  # type: ignore[return-value]

    def _lead(self, batch: list[_Ticket[T, R]]) -> None:
        # For each item, its result or the error that item alone met.
        outcomes: Sequence[R | BaseException]
        try:
            outcomes = self._write([t.item for t in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError("group commit writer answered for the wrong number of items")
        except BaseException as exc:  # every writer in the batch must hear of it
            outcomes = [exc] * len(batch)
        with self._ready:
            for ticket, outcome in zip(batch, outcomes, strict=True):
                ticket.outcome, ticket.done = outcome, True
            self.batches += 1
            self.items += len(batch)
            self._writing = False
            self._ready.notify_all()
