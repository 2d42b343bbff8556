"""Read-your-writes without holding a connection: a bounded wait for a store position.

``wait_applied`` polls whether the projections have applied the event at a store position,
taking a pooled connection for each poll only and sleeping with none (a reader waiting two
seconds used to keep one of the pool's connections for all of it). The answer says whether
the event is applied, or that the position is past the store's head (no write ever answered
it: it cannot be waited for), and otherwise how far the projections are, for the caller to
answer "try again" with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from psycopg_pool import ConnectionPool

from events.store.log import EventLog
from projections.chart import CHART_PROJECTIONS, applied_position, has_applied
from projections.engine.base import Projection
from projections.registry import named


class Reached(Enum):
    """How a wait for a position ended."""

    APPLIED = "applied"
    BEYOND_HEAD = "beyond_head"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class Waited:
    """How a wait ended, the store's head, and the lowest position the projections waited
    for have applied (their current position)."""

    reached: Reached
    head: int
    position: int


def wait_applied(
    reads: ConnectionPool,
    log: EventLog,
    min_position: int,
    timeout_s: float,
    projections: tuple[Projection, ...] | None = None,
    *,
    first_poll_s: float = 0.02,
    max_poll_s: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Wait at most ``timeout_s`` until every projection of ``projections`` (default: the
    chart's) that consumes the event at ``min_position`` has applied it."""
    chosen = _chosen(projections)
    if min_position <= 0:
        return Waited(Reached.APPLIED, 0, 0)
    head = log.head()
    if min_position > head:
        return Waited(Reached.BEYOND_HEAD, head, projection_position(reads, chosen))
    deadline = clock() + timeout_s
    stream = log.stream_of(min_position)
    if stream is None:  # a gap in the positions (a failed insert): nothing to wait for
        return Waited(Reached.APPLIED, head, 0)
    poll = first_poll_s
    while True:
        with reads.connection() as conn:
            if has_applied(conn, stream, min_position, chosen):
                return Waited(Reached.APPLIED, head, min_position)
        left = deadline - clock()
        if left <= 0:
            consuming = tuple(p for p in chosen if stream[0] in p.topics) or chosen
            return Waited(Reached.TIMED_OUT, head, projection_position(reads, consuming))
        sleep(min(poll, left))
        poll = min(poll * 2, max_poll_s)


def projection_position(
    reads: ConnectionPool, projections: tuple[Projection, ...] | None = None
) -> int:
    """The lowest store position the projections (default: the chart's) have applied."""
    with reads.connection() as conn:
        return min((applied_position(conn, p.name) for p in _chosen(projections)), default=0)


def _chosen(projections: tuple[Projection, ...] | None) -> tuple[Projection, ...]:
    return projections or tuple(named(name) for name in CHART_PROJECTIONS)
