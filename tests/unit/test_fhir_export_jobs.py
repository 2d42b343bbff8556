"""Unit tests of export jobs: the NDJSON files and a job's run, cancel, failure and expiry.

The runner runs against an in-memory job table and a fake scan (no servers): what is under
test is its lifecycle, not the SQL (the e2e test runs that against PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.fhir.export import jobs, writer
from services.fhir.export.jobs import Job, Written
from services.fhir.export.writer import (
    Busy,
    Cancelled,
    ExportRunner,
    Hooks,
    file_of,
    job_directory,
    write_ndjson,
)
from services.fhir.kinds import Kind
from services.local_stack.processes import wait_until
from tests.unit.conftest import FakeClock

OWNER = UUID("00000000-0000-4000-8000-00000000000c")


def patient(n: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": str(UUID(int=n)), "gender": "female"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class FakeConn:
    """Stands in for a pooled connection: the runner only opens transactions on it."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def execute(self, *_: object) -> None:
        return None


class FakePool:
    @contextmanager
    def connection(self) -> Iterator[FakeConn]:
        yield FakeConn()


class Table:
    """The job table in memory, with the same functions ``jobs`` has."""

    def __init__(self) -> None:
        self.rows: dict[UUID, Job] = {}
        self.lock = threading.Lock()

    def _update(self, job_id: UUID, **changes: Any) -> bool:
        with self.lock:
            job = self.rows.get(job_id)
            if job is None or job.state != "running":
                return False
            self.rows[job_id] = dataclasses.replace(job, **changes)
            return True

    def create_table(self, _: object) -> None:
        return None

    def insert(self, _: object, job: Job) -> None:
        self.rows[job.job_id] = job

    def set_progress(self, _: object, job_id: UUID, progress: str) -> None:
        self._update(job_id, progress=progress)

    def complete(self, _: object, job_id: UUID, output: Sequence[Written], at: datetime) -> bool:
        return self._update(job_id, state="complete", output=tuple(output), finished_at=at)

    def fail(self, _: object, job_id: UUID, error: str, at: datetime) -> None:
        self._update(job_id, state="failed", error=error, finished_at=at)

    def delete(self, _: object, job_id: UUID) -> bool:
        return self.rows.pop(job_id, None) is not None

    def expired(self, _: object, now: datetime, keep: timedelta) -> list[UUID]:
        return [
            j.job_id
            for j in self.rows.values()
            if j.finished_at is not None and j.finished_at + keep <= now
        ]

    def interrupted(self, _: object, running: Sequence[UUID], at: datetime) -> list[UUID]:
        stale = [j for j in self.rows if self.rows[j].state == "running" and j not in running]
        for job_id in stale:
            self._update(job_id, state="failed", error="interrupted", finished_at=at)
        return stale


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Table:
    fake = Table()
    for name in ("create_table", "insert", "set_progress", "complete", "fail", "delete"):
        monkeypatch.setattr(jobs, name, getattr(fake, name))
    monkeypatch.setattr(jobs, "expired", fake.expired)
    monkeypatch.setattr(jobs, "interrupted", fake.interrupted)
    return fake


def served(resources: Mapping[str, Any]) -> Any:
    """A fake ``scan``: each kind's resources from ``resources`` (a list, or a callable
    answering an iterator)."""

    def scan(_: object, kind: Kind, *, since: datetime | None = None) -> Iterator[Any]:
        assert since is None or since.tzinfo is not None
        given = resources[kind.name]
        return iter(given() if callable(given) else given)

    return scan


def kind(name: str) -> Kind:
    return Kind(name=name, source="", to_resource=dict)


def new_job(clock: FakeClock, types: tuple[str, ...] = ("Patient", "Observation")) -> Job:
    return Job(
        job_id=uuid4(),
        owner_id=OWNER,
        level="patient",
        types=types,
        since=None,
        request_url="https://h/fhir/R4/Patient/$export",
        state="running",
        transaction_time=clock(),
        created_at=clock(),
    )


class Audit:
    """Records each audit call and the job's state when it was made."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.calls: list[tuple[int, str]] = []

    def __call__(self, job: Job, rows: int) -> None:
        self.calls.append((rows, self.table.rows[job.job_id].state))


def runner_in(tmp_path: Path, clock: FakeClock, max_running: int = 2) -> ExportRunner:
    return ExportRunner(FakePool(), tmp_path / "exports", clock, max_running)  # type: ignore[arg-type]


def finished(table: Table, job_id: UUID) -> bool:
    return wait_until(
        lambda: table.rows.get(job_id, None) is None or table.rows[job_id].state != "running",
        5,
        0.01,
    )


def test_ndjson_has_one_resource_per_line_in_a_private_file(tmp_path: Path) -> None:
    # given three patients
    path = tmp_path / "Patient.ndjson"
    # when they are written
    count = write_ndjson(path, [patient(1), patient(2), patient(3)], lambda: False)
    # then each line is one of them, and only the owner may read the file
    lines = path.read_text(encoding="utf-8").splitlines()
    assert count == 3 and [json.loads(line) for line in lines] == [patient(n) for n in (1, 2, 3)]
    assert mode(path) == 0o600


def test_a_type_without_resources_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "Observation.ndjson"
    assert write_ndjson(path, [], lambda: False) == 0
    assert not path.exists()


def test_a_cancelled_write_stops_at_the_next_resource(tmp_path: Path) -> None:
    seen: list[int] = []

    def resources() -> Iterator[dict[str, Any]]:
        for n in range(10):
            seen.append(n)
            yield patient(n)

    with pytest.raises(Cancelled):
        write_ndjson(tmp_path / "Patient.ndjson", resources(), lambda: len(seen) > 2)
    assert len(seen) == 3


def test_job_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        directory = job_directory(tmp_path / "exports", uuid4(), create=True)
    finally:
        os.umask(old)
    assert mode(directory) == 0o700 and mode(directory.parent) == 0o700


@pytest.mark.parametrize("name", ["../Patient", "Patient/x", "patient", "", "Pa.tient"])
def test_file_names_are_resource_types_never_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="resource type"):
        file_of(tmp_path, uuid4(), name)


def test_the_scope_names_level_types_and_since(clock: FakeClock) -> None:
    job = dataclasses.replace(new_job(clock), since=datetime(2024, 1, 2, tzinfo=UTC))
    assert job.scope == (
        "FHIR bulk export, patient level, Patient,Observation since 2024-01-02T00:00:00+00:00"
    )


def test_a_job_writes_each_type_audits_once_then_completes(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two patients and no observations
    monkeypatch.setattr(
        writer, "scan", served({"Patient": [patient(1), patient(2)], "Observation": []})
    )
    runner, job, audit = runner_in(tmp_path, clock), new_job(clock), Audit(table)
    # when the job runs
    runner.start(job, [kind("Patient"), kind("Observation")], Hooks(lambda: True, audit))
    assert finished(table, job.job_id)
    # then it is complete with the one non-empty file, audited once while still running
    done = table.rows[job.job_id]
    assert done.state == "complete" and done.output == (Written("Patient", 2),)
    assert audit.calls == [(2, "running")]
    directory = job_directory(runner.root, job.job_id)
    assert sorted(p.name for p in directory.iterdir()) == ["Patient.ndjson"]
    assert runner.running() == []


def test_a_job_whose_read_tables_lag_fails_visibly_without_files(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "scan", served({"Patient": [patient(1)]}))
    runner, job, audit = runner_in(tmp_path, clock), new_job(clock, ("Patient",)), Audit(table)
    runner.start(job, [kind("Patient")], Hooks(lambda: False, audit))
    assert finished(table, job.job_id)
    failed = table.rows[job.job_id]
    assert failed.state == "failed" and failed.error and "catch up" in failed.error
    assert audit.calls == [] and not job_directory(runner.root, job.job_id).exists()


def test_a_job_that_breaks_midway_fails_and_leaves_no_partial_file(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Iterator[dict[str, Any]]:
        yield patient(1)
        raise OSError("disk full")

    monkeypatch.setattr(writer, "scan", served({"Patient": broken}))
    runner, job, audit = runner_in(tmp_path, clock), new_job(clock, ("Patient",)), Audit(table)
    runner.start(job, [kind("Patient")], Hooks(lambda: True, audit))
    assert finished(table, job.job_id)
    assert table.rows[job.job_id].state == "failed"
    assert table.rows[job.job_id].error == "the export failed"  # the reason names no data
    assert audit.calls == [] and not job_directory(runner.root, job.job_id).exists()


def endless(started: threading.Event, stop: threading.Event) -> Any:
    """Patients without end, a little at a time, until ``stop``."""

    def resources() -> Iterator[dict[str, Any]]:
        n = 0
        while not stop.is_set():
            n += 1
            yield patient(n)
            started.set()
            stop.wait(0.005)  # a slow table, so the test's files stay small

    return resources


def test_a_cancelled_job_stops_and_is_forgotten_with_its_files(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a job in the middle of writing its patients
    started, stop = threading.Event(), threading.Event()
    monkeypatch.setattr(writer, "scan", served({"Patient": endless(started, stop)}))
    runner, job, audit = runner_in(tmp_path, clock), new_job(clock, ("Patient",)), Audit(table)
    runner.start(job, [kind("Patient")], Hooks(lambda: True, audit))
    assert started.wait(5)
    assert job_directory(runner.root, job.job_id).exists()
    # when it is cancelled
    try:
        assert runner.cancel(job.job_id, wait_s=5)
    finally:
        stop.set()
    # then it stopped, was never audited, and neither its row nor its files remain
    assert runner.running() == [] and audit.calls == []
    assert job.job_id not in table.rows
    assert not job_directory(runner.root, job.job_id).exists()
    assert not runner.cancel(uuid4())  # an unknown job: nothing to cancel


def test_past_the_limit_of_running_exports_a_kick_off_is_refused(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, stop = threading.Event(), threading.Event()
    monkeypatch.setattr(writer, "scan", served({"Patient": endless(started, stop)}))
    runner = runner_in(tmp_path, clock, max_running=1)
    first, second = new_job(clock, ("Patient",)), new_job(clock, ("Patient",))
    hooks = Hooks(lambda: True, Audit(table))
    try:
        runner.start(first, [kind("Patient")], hooks)
        with pytest.raises(Busy):
            runner.start(second, [kind("Patient")], hooks)
        assert second.job_id not in table.rows
    finally:
        stop.set()
        runner.close()
    assert runner.running() == []


def test_finished_jobs_expire_with_their_files(
    tmp_path: Path, clock: FakeClock, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "scan", served({"Patient": [patient(1)]}))
    runner, job = runner_in(tmp_path, clock), new_job(clock, ("Patient",))
    runner.start(job, [kind("Patient")], Hooks(lambda: True, Audit(table)))
    assert finished(table, job.job_id)
    keep = timedelta(hours=1)
    clock.advance(minutes=59)
    assert runner.sweep(keep) == 0 and file_of(runner.root, job.job_id, "Patient").exists()
    clock.advance(minutes=1)
    assert runner.sweep(keep) == 1
    assert job.job_id not in table.rows and not job_directory(runner.root, job.job_id).exists()


def test_jobs_left_running_by_a_previous_process_fail_at_start(
    tmp_path: Path, clock: FakeClock, table: Table
) -> None:
    # given a job a stopped process left running, with a partial file
    stale = new_job(clock)
    table.insert(None, stale)
    left = job_directory(tmp_path / "exports", stale.job_id, create=True) / "Patient.ndjson"
    left.write_text("{}\n")
    # when the next process starts its runner
    runner_in(tmp_path, clock)
    # then the job has failed and its partial file is gone
    assert table.rows[stale.job_id].state == "failed"
    assert not left.parent.exists()
