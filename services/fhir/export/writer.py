"""Writing an export: one NDJSON file per resource type, and the job's background run.

Files are ``<root>/<job id>/<Type>.ndjson``, one resource per line, the directories 0700
and the files 0600 whatever the umask: they hold whole records. A type with no resources
leaves no file (and no manifest entry). ``ExportRunner`` runs each job in a thread of the
API process: it waits for the read tables to catch up with the store, scans every type in
one read-only snapshot, records the export's audit event and only then marks the job
complete, so no file is ever served that was not audited. A cancel stops the thread at the
next resource and removes the files."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from services.fhir.export import jobs
from services.fhir.export.jobs import Job, Written
from services.fhir.kinds import Kind
from services.fhir.search import scan

log = logging.getLogger(__name__)

TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
PROGRESS_EVERY = 1000  # resources between two progress updates of the job's row


class Cancelled(Exception):
    """The job was cancelled while it was being written."""


class ExportFailed(Exception):
    """The job cannot complete; the message (no patient data) is what its poller reads."""


class Busy(Exception):
    """As many exports are running as the server allows."""


def job_directory(root: Path, job_id: UUID, *, create: bool = False) -> Path:
    """The directory of a job's files (made 0700, with ``root``, when ``create``)."""
    directory = root / str(job_id)
    if create:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)
        directory.mkdir(mode=0o700)
        directory.chmod(0o700)
    return directory


def file_of(root: Path, job_id: UUID, type_name: str) -> Path:
    """Where a job's NDJSON file of ``type_name`` is (the name checked, never a path)."""
    if not TYPE_NAME.fullmatch(type_name):
        raise ValueError("not a resource type name")
    return job_directory(root, job_id) / f"{type_name}.ndjson"


def remove_files(root: Path, job_id: UUID) -> None:
    """Remove a job's directory and everything in it (nothing to do when absent)."""
    shutil.rmtree(job_directory(root, job_id), ignore_errors=True)


def write_ndjson(
    path: Path,
    resources: Iterable[Mapping[str, Any]],
    cancelled: Callable[[], bool],
    on_count: Callable[[int], None] | None = None,
) -> int:
    """Write ``resources`` to ``path``, one per line; answers how many. An empty file is
    removed again. ``on_count`` hears the running count every ``PROGRESS_EVERY``."""
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for resource in resources:
            if cancelled():
                raise Cancelled
            out.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
            if on_count is not None and count % PROGRESS_EVERY == 0:
                on_count(count)
    if count == 0:
        path.unlink()
    return count


@dataclass(frozen=True)
class Hooks:
    """What a job needs from the process around it: waiting until the read tables hold
    everything recorded before the kick-off (False: they did not in time), and recording
    the export's one audit event with the number of resources written."""

    catch_up: Callable[[], bool]
    audit: Callable[[Job, int], None]


class ExportRunner:
    """Runs export jobs in background threads and cancels them; one per API process."""

    def __init__(
        self,
        reads: ConnectionPool,
        root: Path,
        clock: Callable[[], datetime],
        max_running: int = 2,
    ) -> None:
        self.reads = reads
        self.root = root
        self.clock = clock
        self.max_running = max_running
        self._lock = threading.Lock()
        self._running: dict[UUID, tuple[threading.Thread, threading.Event]] = {}
        with reads.connection() as conn:
            jobs.create_table(conn)
            stale = jobs.interrupted(conn, (), clock())
        for job_id in stale:
            remove_files(root, job_id)

    def start(self, job: Job, kinds: Sequence[Kind], hooks: Hooks) -> None:
        """Record ``job`` and start writing it; ``Busy`` when too many are running."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(job, kinds, hooks, stop), name="fhir-export", daemon=True
        )
        with self._lock:
            if len(self._running) >= self.max_running:
                raise Busy
            with self.reads.connection() as conn:
                jobs.insert(conn, job)
            self._running[job.job_id] = (thread, stop)
        thread.start()

    def running(self) -> list[UUID]:
        """The jobs this process is writing now."""
        with self._lock:
            return list(self._running)

    def cancel(self, job_id: UUID, wait_s: float = 10.0) -> bool:
        """Stop the job if it runs (waiting up to ``wait_s``), delete it and its files;
        False when there was no such job."""
        with self._lock:
            entry = self._running.get(job_id)
        if entry is not None:
            thread, stop = entry
            stop.set()
            thread.join(wait_s)
        with self.reads.connection() as conn:
            deleted = jobs.delete(conn, job_id)
        remove_files(self.root, job_id)
        return deleted or entry is not None

    def sweep(self, keep: timedelta) -> int:
        """Delete the finished jobs past ``keep``, with their files; answers how many."""
        with self.reads.connection() as conn:
            old = jobs.expired(conn, self.clock(), keep)
            for job_id in old:
                jobs.delete(conn, job_id)
        for job_id in old:
            remove_files(self.root, job_id)
        return len(old)

    def close(self, wait_s: float = 10.0) -> None:
        """Cancel every running job (the process is stopping)."""
        for job_id in self.running():
            self.cancel(job_id, wait_s)

    def _progress(self, job_id: UUID, text: str) -> None:
        with self.reads.connection() as conn:
            jobs.set_progress(conn, job_id, text)

    def _write(self, job: Job, kinds: Sequence[Kind], stop: threading.Event) -> list[Written]:
        directory = job_directory(self.root, job.job_id, create=True)
        written: list[Written] = []
        with self.reads.connection() as conn, conn.transaction():
            # One snapshot for every type: references between the files resolve.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for number, kind in enumerate(kinds, 1):
                step = f"{kind.name} ({number} of {len(kinds)} types)"

                def counted(n: int, step: str = step) -> None:
                    self._progress(job.job_id, f"{step}: {n} written")

                counted(0)
                path = directory / f"{kind.name}.ndjson"
                count = write_ndjson(path, scan(conn, kind, since=job.since), stop.is_set, counted)
                if count:
                    written.append(Written(kind.name, count))
        return written

    def _run(self, job: Job, kinds: Sequence[Kind], hooks: Hooks, stop: threading.Event) -> None:
        try:
            self._progress(job.job_id, "waiting for the read tables to catch up")
            if not hooks.catch_up():
                raise ExportFailed("the read tables did not catch up with the store in time")
            written = self._write(job, kinds, stop)
            if stop.is_set():
                raise Cancelled
            hooks.audit(job, sum(f.count for f in written))
            with self.reads.connection() as conn:
                if not jobs.complete(conn, job.job_id, written, self.clock()):
                    raise Cancelled  # deleted under us: cancelled or expired
        except Cancelled:
            remove_files(self.root, job.job_id)
        # A background job has no caller to raise to: any error fails the job visibly (its
        # poller gets a 500 OperationOutcome) and its partial files are removed.
        except Exception as exc:
            reason = str(exc) if isinstance(exc, ExportFailed) else "the export failed"
            log.error("FHIR export failed", extra={"fields": {"error": type(exc).__name__}})
            remove_files(self.root, job.job_id)
            with self.reads.connection() as conn:
                jobs.fail(conn, job.job_id, reason, self.clock())
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)
