"""A patient's full history from the store: every change and every read, with what changed.

Each event is folded into the state of its stream with the aggregate's own ``evolve``;
the fields that differ before and after are the change. Events of an erased patient
show only their clear metadata (type, actor, recording time), never clinical content.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from events.domain.aggregates import access, encounters, medications, orders, patients, wards
from events.domain.envelope import ClinicalEvent
from events.store.log import EventLog, LoggedEvent
from events.store.mapper import EventHeader

EVOLVE_BY_TYPE: dict[str, Callable[[Any, ClinicalEvent], Any]] = {
    **dict.fromkeys(
        (
            "patient.registered",
            "patient.demographics_updated",
            "allergy.recorded",
            "allergy.refuted",
            "allergy.status_changed",
            "allergy.none_known",
            "patient.erased",
            "patient.merged",
            "patient.unmerged",
        ),
        patients.evolve,
    ),
    **dict.fromkeys(
        (
            "order.placed",
            "specimen.collected",
            "result.received",
            "result.amended",
            "order.cancelled",
            "result.acknowledged",
            "result.escalated",
        ),
        orders.evolve,
    ),
    **dict.fromkeys(
        (
            "medication.prescribed",
            "medication.changed",
            "medication.discontinued",
            "medication.administered",
            "pharmacy.verified",
            "pharmacy.rejected",
        ),
        medications.evolve,
    ),
    **dict.fromkeys(
        (
            "encounter.started",
            "encounter.transferred",
            "encounter.updated",
            "encounter.ended",
        ),
        encounters.evolve,
    ),
    "care_team.changed": access.evolve_care_team,
    "ward.staff_changed": wards.evolve,
    "access.break_glass": access.evolve_break_glass,
}
READS = frozenset({"chart.viewed"})


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _changes(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    old = dataclasses.asdict(before) if before is not None else {}
    new = dataclasses.asdict(after)
    return {
        name: {"before": _plain(old.get(name)), "after": _plain(value)}
        for name, value in new.items()
        if name != "id" and not name.endswith("version") and old.get(name) != value
    }


def history_entries(
    events: Iterable[LoggedEvent], states: dict[UUID, Any] | None = None
) -> list[dict[str, Any]]:
    """One entry per event, oldest first, with a before/after of changed fields (``states``:
    each stream's state before the first of these events, when they do not start it)."""
    states = dict(states or {})
    entries: list[dict[str, Any]] = []
    for logged in events:
        event = logged.event
        if event is None:
            header = logged.header
            entries.append(
                {
                    "position": logged.position,
                    "event_type": header.event_type,
                    "actor": header.actor.model_dump(mode="json"),
                    "reason": None,
                    "occurred_at": None,
                    "recorded_at": header.recorded_at.isoformat(),
                    "kind": "read" if header.event_type in READS else "change",
                    "changes": None,
                    "erased": True,
                }
            )
            continue
        entry: dict[str, Any] = {
            "position": logged.position,
            "event_type": event.event_type,
            "actor": event.actor.model_dump(mode="json"),
            "reason": event.reason,
            "occurred_at": event.occurred_at.isoformat(),
            "recorded_at": event.timestamp.isoformat(),
            "kind": "read" if event.event_type in READS else "change",
            "erased": False,
        }
        evolve = EVOLVE_BY_TYPE.get(event.event_type)
        if evolve is not None:
            before = states.get(event.originator_id)
            try:
                after = evolve(before, event)
            except ValueError:  # the stream's earlier events are erased
                entry["changes"] = None
            else:
                states[event.originator_id] = after
                entry["changes"] = _changes(before, after)
        else:
            entry["changes"] = (
                None
                if event.event_type in READS
                else {
                    k: {"before": None, "after": v}
                    for k, v in event.payload.model_dump(mode="json").items()
                }
            )
        entries.append(entry)
    return entries


def within(entry: dict[str, Any], since: datetime | None, until: datetime | None) -> bool:
    recorded = datetime.fromisoformat(entry["recorded_at"])
    return (since is None or recorded >= since) and (until is None or recorded <= until)


@dataclass(frozen=True)
class HistoryPage:
    """One page of a patient's history, and the cursor of the next (None at the end)."""

    entries: list[dict[str, Any]]
    next_after: int | None
    scanned: int


def history_page(
    log: EventLog,
    patient_id: UUID,
    after: int = 0,
    limit: int = 100,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> HistoryPage:
    """Up to ``limit`` entries of the patient's history after position ``after``, filtered
    on the clear header, so that only the page's events are decrypted; the before/after of a
    change folds the earlier events of its own stream only (a medication's, never the
    patient's reads)."""

    def wanted(header: EventHeader) -> bool:
        return (event_type is None or header.event_type == event_type) and (
            (since is None or header.recorded_at >= since)
            and (until is None or header.recorded_at <= until)
        )

    page = log.of_patient_after(patient_id, after, limit, wanted)
    states: dict[UUID, Any] = {}
    seen: set[UUID] = set()
    for logged in page.events:
        event = logged.event
        if event is None or logged.stream_id in seen:
            continue
        seen.add(logged.stream_id)
        evolve = EVOLVE_BY_TYPE.get(event.event_type)
        if evolve is None:
            continue
        state: Any = None
        if logged.stream_version <= 1:
            continue
        try:
            for earlier in log.stream_before(logged.stream_id, logged.stream_version):
                state = evolve(state, earlier)
        except ValueError:  # an earlier event of the stream is erased or foreign
            state = None
        states[logged.stream_id] = state
    return HistoryPage(history_entries(page.events, states), page.next_after, page.scanned)
