"""Escalation of critical results nobody acknowledged: the lab-routing consumer's sweep.

Every ``interval_s`` the sweep reads the inbox for critical (HH/LL) items still open and
not escalated ``after`` their notification, and sends ``EscalateResult`` through the store
for each. The order aggregate decides (acknowledged meanwhile, escalated already, or not
yet due: refused and skipped); the ``result.escalated`` event then reaches the inbox
through the lab-routing projection like every other event, so the sweep writes no table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.commands.base import CommandContext, CommandResult
from events.commands.orders import EscalateResult
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import DomainError

__all__ = ["EscalationSweep", "due_escalations", "run_escalations"]

log = logging.getLogger(__name__)

DUE_SQL = (
    "SELECT order_id, item_id, notified_at FROM inbox_items "
    "WHERE flag IN ('HH', 'LL') AND acknowledged_at IS NULL AND escalated_at IS NULL "
    "AND notified_at <= %s ORDER BY notified_at, item_id LIMIT %s"
)


class Escalates(Protocol):
    """What the sweep needs of the store: the command, and the store's clock."""

    def escalate_result(self, ctx: CommandContext, cmd: EscalateResult) -> CommandResult: ...

    clock: Callable[[], datetime]


def due_escalations(
    pool: ConnectionPool, now: datetime, after: timedelta, limit: int = 100
) -> list[tuple[UUID, UUID, datetime]]:
    """(order id, item id, notified at) of the critical items due for escalation."""
    with pool.connection() as conn:
        rows = conn.execute(DUE_SQL, (now - after, limit)).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


@dataclass
class EscalationSweep:
    """One sweep of the inbox; remembers what it sent until the projection shows it."""

    store: Escalates
    pool: ConnectionPool
    after: timedelta
    batch: int = 100
    sent: set[tuple[UUID, datetime]] = field(default_factory=set)

    def __call__(self) -> int:
        """Escalate what is due; the number of escalations recorded."""
        # Room for everything already sent or refused and still open, plus a batch: an item
        # the store keeps refusing never hides the ones behind it.
        limit = len(self.sent) + self.batch
        due = due_escalations(self.pool, self.store.clock(), self.after, limit)
        self.sent &= {(item, at) for _, item, at in due}  # forget what the inbox has caught up
        recorded = 0
        for order_id, item_id, notified_at in due:
            if (item_id, notified_at) in self.sent:
                continue
            ctx = CommandContext(actor=SYSTEM_ACTOR, causation_id=item_id)
            try:
                result = self.store.escalate_result(
                    ctx, EscalateResult(order_id, item_id, self.after)
                )
            except DomainError as exc:  # acknowledged or escalated meanwhile, or erased
                log.info("escalation skipped", extra={"fields": {"reason": type(exc).__name__}})
                self.sent.add((item_id, notified_at))
                continue
            self.sent.add((item_id, notified_at))
            recorded += 1
            notified = len(result.detail.get("notified", []))
            log.info(
                "critical result escalated",
                extra={"fields": {"position": result.position, "notified": notified}},
            )
        return recorded


def run_escalations(
    sweep: Callable[[], Any], stop: threading.Event, interval_s: float
) -> threading.Thread:
    """Run ``sweep`` every ``interval_s`` in a daemon thread until ``stop``; a failing sweep
    is logged and retried at the next interval (the inbox is still there)."""

    def loop() -> None:
        while not stop.is_set():
            try:
                sweep()
            except Exception as exc:  # logged and retried at the next interval, never silent
                log.error(
                    "escalation sweep failed", extra={"fields": {"error": type(exc).__name__}}
                )
            stop.wait(interval_s)

    thread = threading.Thread(target=loop, name="escalation", daemon=True)
    thread.start()
    return thread
