"""What every aggregate module shares: folding events into state, and reason checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from events.domain.envelope import ClinicalEvent
from events.domain.errors import ReasonRequired

S = TypeVar("S")
Evolve = Callable[[S | None, ClinicalEvent], S]


def fold(evolve: Evolve[S]) -> Callable[[S | None, Iterable[ClinicalEvent]], S | None]:
    """An ``eventsourcing`` projector function from a per-event ``evolve``."""

    def project(state: S | None, events: Iterable[ClinicalEvent]) -> S | None:
        for event in events:
            state = evolve(state, event)
        return state

    return project


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise ReasonRequired(what)
    return reason.strip()
