"""A patient's chart as it was at a past moment, replayed from the event store.

The patient's events up to T (by recording time: what clinicians could see then; or by
clinical time) are applied with the projections' own handlers into a scratch schema inside
a transaction that is rolled back, and the chart is read from it with the same one-query
``fetch_chart``. Same code as the live chart, so the two agree. For a record touched by
merges, the events of every record it was ever merged with (directly or through others) are
replayed too, in store order: the merges in force at T then decide whose chart it was.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection, sql

from events.application import ClinicalStore
from events.domain.payloads.merges import PatientMerged, PatientUnmerged
from events.store.log import LoggedEvent
from projections.chart import CHART_PROJECTIONS, Chart, fetch_chart
from projections.engine.applying import apply_once, from_log
from projections.engine.marks import Marks
from projections.engine.state import STATE_DDL
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


class ReplayRolledBack(Exception):
    """Raised to roll back the scratch schema; never escapes."""


def chart_as_of(
    conn: Connection[Any],
    store: ClinicalStore,
    patient_id: UUID,
    at: datetime,
    basis: TimeBasis = "recorded",
) -> Chart | None:
    projections = [named(name) for name in CHART_PROJECTIONS]
    scratch = f"as_of_{uuid.uuid4().hex[:12]}"
    chart: Chart | None = None
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(scratch)))
            conn.execute(STATE_DDL)
            for projection in projections:
                conn.execute(projection.ddl)
            cur = conn.cursor()
            marks = {p.name: Marks(p.name, empty=True) for p in projections}
            for logged in related_events(store, patient_id):
                event = from_log(logged)
                envelope = event.envelope
                moment = envelope.occurred_at if basis == "clinical" else envelope.recorded_at
                if moment is not None and moment > at:
                    continue
                for projection in projections:
                    if event.topic in projection.topics:
                        apply_once(
                            cur,
                            projection,
                            marks[projection.name],
                            event.topic,
                            envelope,
                            event.payload,
                        )
            for projection_marks in marks.values():
                projection_marks.flush(cur)
            chart = fetch_chart(conn, patient_id)
            raise ReplayRolledBack
    except ReplayRolledBack:
        pass
    return chart
