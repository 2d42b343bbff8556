"""The completion manifest of an export job, as the Bulk Data IG defines it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class OutputFile:
    """One NDJSON file of a finished export: its resource type, download URL and line count."""

    type: str
    url: str
    count: int


def manifest(
    transaction_time: datetime,
    request_url: str,
    output: Sequence[OutputFile],
    errors: Sequence[OutputFile] = (),
) -> dict[str, Any]:
    """The manifest answered (200) once the job is complete."""
    return {
        "transactionTime": transaction_time.isoformat(),
        "request": request_url,
        "requiresAccessToken": True,
        "output": [{"type": f.type, "url": f.url, "count": f.count} for f in output],
        "error": [{"type": f.type, "url": f.url, "count": f.count} for f in errors],
    }


def expired(finished_at: datetime, now: datetime, keep: timedelta) -> bool:
    """Whether a finished job's files are past their expiry and must be removed."""
    return now >= finished_at + keep
