"""Audit export: the access log and the change log of a patient or a user, as CSV or JSONL.

Both logs come from the event store itself (not a read model), so the export is complete:
every change and every read (``chart.viewed``, ``access.break_glass``) is an event. Only
the clear header is needed to select a user's or a patient's events; the rest is decrypted
for the rows that match. Erased patients' events export their metadata only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from events.application import ClinicalStore
from events.store.history import history_entries
from events.store.mapper import EventHeader

FIELDS = (
    "position",
    "log",
    "event_type",
    "patient_id",
    "user_id",
    "role",
    "reason",
    "occurred_at",
    "recorded_at",
    "erased",
    "changes",
)
ACCESS_TYPES = frozenset(
    {"chart.viewed", "access.break_glass", "auth.login_failed", "auth.locked_out"}
)


def export_rows(
    store: ClinicalStore,
    patient_id: UUID | None,
    user_id: UUID | None,
    since: datetime | None,
    advance: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The matching events oldest first, as flat rows."""

    def wanted(header: EventHeader) -> bool:
        return (
            (patient_id is None or header.patient_id == patient_id)
            and (user_id is None or header.actor.user_id == user_id)
            and (since is None or header.recorded_at >= since)
        )

    for page in store.event_log.pages(where=wanted):
        for entry, logged in zip(history_entries(page.events), page.events, strict=True):
            yield {
                "position": entry["position"],
                "log": "access" if entry["event_type"] in ACCESS_TYPES else "change",
                "event_type": entry["event_type"],
                "patient_id": str(logged.patient_id) if logged.patient_id else "",
                "user_id": entry["actor"]["user_id"],
                "role": entry["actor"]["role"],
                "reason": entry["reason"] or "",
                "occurred_at": entry["occurred_at"] or "",
                "recorded_at": entry["recorded_at"],
                "erased": entry["erased"],
                "changes": json.dumps(entry["changes"]) if entry["changes"] else "",
            }
        if advance is not None:
            advance(page.read)


def render(rows: Iterator[dict[str, Any]], fmt: str) -> Iterator[str]:
    """Rows as CSV (with a header line) or JSON lines."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
