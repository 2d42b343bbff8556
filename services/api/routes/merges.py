"""``/v1/patients/{id}/merge`` and ``/unmerge``, and how reads follow a merge.

Included by the patients router (same prefix and tag). ``{id}`` is the survivor. Only
registration staff (front desk, HIM) and administrators merge or unmerge records: it
changes whose chart a record answers, not anything clinical.

Reads of a merged record answer its survivor's chart with both records' data; who may read
it is decided by the survivor's care team, and the access log records the survivor. The
write side (the records' streams) says whose chart a read gets; the chart projection must
agree before it is shown, so a read never shows a group the store no longer holds (after an
unmerge, say) while the projection catches up: it answers 503 with Retry-After instead.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, status

from events.commands.merges import MergePatients, UnmergePatients
from events.store.history import history_page
from events.store.log import EventLog
from projections.chart import Chart
from projections.waits import projection_position
from services.api.container import Container
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.guards import Guards, ProjectionBehind
from services.api.schemas.common import Written
from services.api.schemas.patients import MergeCreate
from services.auth.service import Principal

router = APIRouter()

Registrar = Annotated[Principal, Depends(require("admin", "front_desk"))]


@router.post("/{patient_id}/merge", status_code=status.HTTP_201_CREATED, response_model=Written)
def merge_patients(
    patient_id: UUID,
    body: MergeCreate,
    container: ContainerDep,
    user: Registrar,
    key: IdempotencyKey = None,
) -> Written:
    """Merge the record ``merged_id`` into this one (the survivor): reads of either answer
    this chart with both records' data; the merged record takes no new writes (409)."""
    ctx = write_context(container, user, body, key)
    cmd = MergePatients(survivor_id=patient_id, merged_id=body.merged_id)
    return Written.of(container.store.merge_patients(ctx, cmd))


@router.post("/{patient_id}/unmerge", status_code=status.HTTP_201_CREATED, response_model=Written)
def unmerge_patients(
    patient_id: UUID,
    body: MergeCreate,
    container: ContainerDep,
    user: Registrar,
    key: IdempotencyKey = None,
) -> Written:
    """Undo the merge of ``merged_id`` into this record: each reads as its own again."""
    ctx = write_context(container, user, body, key)
    cmd = UnmergePatients(survivor_id=patient_id, merged_id=body.merged_id)
    return Written.of(container.store.unmerge_patients(ctx, cmd))


def require_agreement(
    container: Container, guards: Guards, chart: Chart, survivor: UUID, merged: tuple[UUID, ...]
) -> None:
    """503 unless the projected chart is the survivor's the store names, holding no record
    the store does not count as merged into it (it may lack a newly merged one: lag)."""
    if chart.survivor_id != survivor or not set(chart.merged_ids) <= set(merged):
        raise ProjectionBehind(
            "a merge or unmerge of this record is not projected yet",
            projection_position(container.replica_reads),
            guards.waits.retry_after_s,
        )


def chart_answer(chart: Chart, patient_id: UUID) -> dict[str, Any]:
    """The chart body with whose chart it is: ``survivor_id`` when read through a merged
    record (else null) and ``merged_ids``, the records whose data it holds besides."""
    survivor = chart.survivor_id if chart.survivor_id not in (None, patient_id) else None
    return {
        **chart.body,
        "survivor_id": str(survivor) if survivor is not None else None,
        "merged_ids": [str(i) for i in chart.merged_ids],
    }


def group_history(
    log: EventLog,
    ids: tuple[UUID, ...],
    after: int,
    limit: int,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[dict[str, Any]], int | None, int]:
    """One page of the histories of several records interleaved in store order: (entries,
    next cursor or None at the end, events scanned). Each record's page is cut where the
    first unfinished one stops, so the next page starts where nothing is skipped."""
    pages = [history_page(log, i, after, limit, event_type, since, until) for i in ids]
    cut = min((p.next_after for p in pages if p.next_after is not None), default=None)
    merged = heapq.merge(*(p.entries for p in pages), key=lambda e: int(e["position"]))
    entries = [e for e in merged if cut is None or int(e["position"]) <= cut]
    if len(entries) > limit:
        entries = entries[:limit]
        cut = int(entries[-1]["position"])
    return entries, cut, sum(p.scanned for p in pages)
