"""Export jobs: their table in the read schema and the states a job goes through.

A job is ``running`` from its kick-off until it is ``complete`` (its files written and the
export audited) or ``failed`` (its files removed, the reason kept for the status answer).
A cancelled or expired job is deleted with its files, so its status URL answers 404. The
rows hold who asked, what for (types, ``_since``, level) and counts: never patient data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast
from uuid import UUID

from psycopg import Connection

Level = Literal["system", "patient"]
State = Literal["running", "complete", "failed"]
# Serialises the CREATE ... IF NOT EXISTS of this table between processes starting at once.
DDL_LOCK = 7_346_219

DDL = """
CREATE TABLE IF NOT EXISTS fhir_export_jobs (
    job_id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    level text NOT NULL CHECK (level IN ('system', 'patient')),
    types text[] NOT NULL,
    since timestamptz,
    request_url text NOT NULL,
    state text NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
    progress text NOT NULL DEFAULT '',
    output jsonb NOT NULL DEFAULT '[]',
    error text,
    transaction_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    finished_at timestamptz
);
"""

COLUMNS = (
    "job_id, owner_id, level, types, since, request_url, state, progress, output, error, "
    "transaction_time, created_at, finished_at"
)


@dataclass(frozen=True)
class Written:
    """One NDJSON file a job wrote: its resource type and how many resources it holds."""

    type: str
    count: int


@dataclass(frozen=True)
class Job:
    """One export: who started it, its scope, its state and (once complete) its files."""

    job_id: UUID
    owner_id: UUID
    level: Level
    types: tuple[str, ...]
    since: datetime | None
    request_url: str
    state: State
    transaction_time: datetime
    created_at: datetime
    progress: str = ""
    output: tuple[Written, ...] = ()
    error: str | None = None
    finished_at: datetime | None = None

    @property
    def scope(self) -> str:
        """The export's scope in words (for its audit record): level, types and _since."""
        since = self.since.isoformat() if self.since else "the beginning"
        return f"FHIR bulk export, {self.level} level, {','.join(self.types)} since {since}"


def create_table(conn: Connection[Any]) -> None:
    """Create the jobs table in the connection's schema (the read schema), if missing."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        row = conn.execute("SELECT to_regclass('fhir_export_jobs')").fetchone()
        if row is None or row[0] is None:
            conn.execute(DDL)


def insert(conn: Connection[Any], job: Job) -> None:
    """Record a job that has just been kicked off."""
    conn.execute(
        "INSERT INTO fhir_export_jobs (job_id, owner_id, level, types, since, request_url, "
        "state, transaction_time, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            job.job_id,
            job.owner_id,
            job.level,
            list(job.types),
            job.since,
            job.request_url,
            job.state,
            job.transaction_time,
            job.created_at,
        ),
    )


def _job(row: Sequence[Any]) -> Job:
    output = row[8] if isinstance(row[8], list) else json.loads(row[8])
    return Job(
        job_id=row[0],
        owner_id=row[1],
        level=cast(Level, row[2]),
        types=tuple(row[3]),
        since=row[4],
        request_url=row[5],
        state=cast(State, row[6]),
        progress=row[7],
        output=tuple(Written(str(f["type"]), int(f["count"])) for f in output),
        error=row[9],
        transaction_time=row[10],
        created_at=row[11],
        finished_at=row[12],
    )


def find(conn: Connection[Any], job_id: UUID) -> Job | None:
    """The job with this id, or None."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM fhir_export_jobs WHERE job_id = %s",  # noqa: S608 - constant
        (job_id,),
    ).fetchone()
    return None if row is None else _job(row)


def set_progress(conn: Connection[Any], job_id: UUID, progress: str) -> None:
    """What a running job has done so far, in words (``X-Progress``)."""
    conn.execute(
        "UPDATE fhir_export_jobs SET progress = %s WHERE job_id = %s AND state = 'running'",
        (progress, job_id),
    )


def complete(conn: Connection[Any], job_id: UUID, output: Sequence[Written], at: datetime) -> bool:
    """Mark a running job complete with its files; False when it is no longer running."""
    files = json.dumps([{"type": f.type, "count": f.count} for f in output])
    done = conn.execute(
        "UPDATE fhir_export_jobs SET state = 'complete', output = %s::jsonb, finished_at = %s, "
        "progress = 'complete' WHERE job_id = %s AND state = 'running'",
        (files, at, job_id),
    )
    return done.rowcount == 1


def fail(conn: Connection[Any], job_id: UUID, error: str, at: datetime) -> None:
    """Mark a running job failed, with a reason that names no patient and no value."""
    conn.execute(
        "UPDATE fhir_export_jobs SET state = 'failed', error = %s, finished_at = %s "
        "WHERE job_id = %s AND state = 'running'",
        (error, at, job_id),
    )


def delete(conn: Connection[Any], job_id: UUID) -> bool:
    """Forget a job (cancelled or expired); False when there was none."""
    return conn.execute("DELETE FROM fhir_export_jobs WHERE job_id = %s", (job_id,)).rowcount == 1


def expired(conn: Connection[Any], now: datetime, keep: timedelta) -> list[UUID]:
    """Finished jobs whose files are past ``keep``: to be deleted with their files."""
    rows = conn.execute(
        "SELECT job_id FROM fhir_export_jobs WHERE finished_at IS NOT NULL "
        "AND finished_at + %s <= %s ORDER BY finished_at",
        (keep, now),
    ).fetchall()
    return [row[0] for row in rows]


def interrupted(conn: Connection[Any], running: Sequence[UUID], at: datetime) -> list[UUID]:
    """Fail the jobs left ``running`` that no thread of this process runs (the API was
    restarted under them), so their clients get a 500 instead of polling forever; answers
    their ids (their partial files are to be removed)."""
    rows = conn.execute(
        "UPDATE fhir_export_jobs SET state = 'failed', finished_at = %s, "
        "error = 'the export was interrupted by a restart of the server' "
        "WHERE state = 'running' AND NOT (job_id = ANY(%s)) RETURNING job_id",
        (at, list(running)),
    ).fetchall()
    return [row[0] for row in rows]
