"""A patient's chart as it was at a past moment, replayed from the event store.

The patient's events up to T (by recording time: what clinicians could see then; or by
clinical time) are applied with the projections' own handlers into a scratch schema inside
a transaction that is rolled back, and the chart is read from it with the same one-query
``fetch_chart``. Same code as the live chart, so the two agree. For a record touched by
merges, the events of every record it was ever merged with (directly or through others) are
replayed too, in store order: the merges in force at T then decide whose chart it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

from events.application import ClinicalStore
from events.domain.payloads.merges import PatientMerged, PatientUnmerged
from events.store.log import LoggedEvent
from projections.chart import CHART_PROJECTIONS, Chart, fetch_chart
from projections.engine.applying import Decoded
from projections.engine.scratch import replay
from projections.registry import named

TimeBasis = Literal["recorded", "clinical"]
MERGE_TYPES = frozenset({PatientMerged.event_type, PatientUnmerged.event_type})
MAX_RELATED = 64


def related_events(store: ClinicalStore, patient_id: UUID) -> list[LoggedEvent]:
    """The events of the patient and of every record ever merged with it, directly or
    through others, in store order (each merge is on both records' streams)."""
    seen, frontier, events = {patient_id}, [patient_id], []
    while frontier:
        logged_events = store.event_log.of_patient(frontier.pop())
        events.extend(logged_events)
        for logged in logged_events:
            payload = logged.event.payload if logged.event is not None else None
            if logged.event_type not in MERGE_TYPES or payload is None:
                continue
            for other in (payload.survivor_id, payload.merged_id):  # type: ignore[attr-defined]
                if other not in seen and len(seen) < MAX_RELATED:
                    seen.add(other)
                    frontier.append(other)
    return sorted(events, key=lambda logged: logged.position)


def chart_as_of(
    conn: Connection[Any],
    store: ClinicalStore,
    patient_id: UUID,
    at: datetime,
    basis: TimeBasis = "recorded",
) -> Chart | None:
    charts: list[Chart | None] = []

    def until_at(event: Decoded) -> bool:
        envelope = event.envelope
        moment = envelope.occurred_at if basis == "clinical" else envelope.recorded_at
        return moment is None or moment <= at

    replay(
        conn,
        [named(name) for name in CHART_PROJECTIONS],
        related_events(store, patient_id),
        wanted=until_at,
        at_end=lambda: charts.append(fetch_chart(conn, patient_id)),
    )
    return charts[0]
