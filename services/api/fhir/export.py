"""Bulk Data export (HL7 FHIR Bulk Data Access IG v2): kick-off, status, files, cancel.

``$export`` (system level) and ``Patient/$export`` (every patient) start a job for the
compliance role (others: 403, recorded as a denial), counted in the ``exports`` rate limit;
the answer is ``202`` with the job's status URL in ``Content-Location``. Polling it answers
``202`` with ``X-Progress`` while the job runs, then the manifest; ``DELETE`` cancels. The
job, its status and its files belong to the user who started it: anyone else gets 404.
Each export is audited once, when its files are ready (``audit.read``, what ``export``, the
number of resources; its scope as the event's reason)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, timedelta
from email.utils import format_datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from events.commands.access import RecordAuditRead
from projections.registry import ALL
from services.api.container import Container
from services.api.deps import ContainerDep, GuardsDep, command_context, require
from services.api.fhir.responses import BASE_PATH, FhirJSONResponse
from services.auth.service import Principal
from services.fhir.export import jobs, params
from services.fhir.export.jobs import Job, Level
from services.fhir.export.manifest import OutputFile, manifest
from services.fhir.export.writer import Busy, ExportRunner, Hooks, file_of
from services.fhir.outcomes import FhirError, issue, operation_outcome
from services.fhir.resources import KINDS
from services.local_stack.processes import wait_until

router = APIRouter()

Compliance = Annotated[Principal, Depends(require("compliance"))]
NDJSON = "application/fhir+ndjson"
ACCEPTED = ("application/fhir+json", "application/json", "*/*", "application/*")
POLL_AFTER_S = 2
_runner_lock = threading.Lock()


def runner_of(container: Container, state: object) -> ExportRunner:
    """The process's export runner, made (with its table) on first use and kept in
    ``app.state`` (the lead's startup may make it earlier with ``build_runner``)."""
    with _runner_lock:
        runner: ExportRunner | None = getattr(state, "fhir_exports", None)
        if runner is None:
            runner = build_runner(container)
            state.fhir_exports = runner  # type: ignore[attr-defined]
        return runner


def build_runner(container: Container) -> ExportRunner:
    """An export runner on the container's read pool and settings."""
    s = container.settings
    return ExportRunner(
        container.reads, s.fhir_export_dir, container.store.clock, s.fhir_export_max_running
    )


def _runner(request: Request, container: ContainerDep) -> ExportRunner:
    runner = runner_of(container, request.app.state)
    runner.sweep(timedelta(seconds=container.settings.fhir_export_keep_s))
    return runner


Runner = Annotated[ExportRunner, Depends(_runner)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


def _check_headers(request: Request) -> None:
    prefer = request.headers.get("prefer", "")
    if "respond-async" not in (p.strip() for p in prefer.split(",")):
        raise FhirError(400, "$export needs the header Prefer: respond-async", code="required")
    accept = request.headers.get("accept")
    if accept and not any(a in accept for a in ACCEPTED):
        raise FhirError(406, "$export answers application/fhir+json", code="not-supported")


def _query(request: Request) -> dict[str, str]:
    given = request.query_params.multi_items()
    names = [name for name, _ in given]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FhirError(400, f"parameter given more than once: {', '.join(repeated)}")
    return dict(given)


def _catch_up(container: Container) -> bool:
    """Wait (bounded) until the relay has published the store's head and every read table
    has consumed it: the export holds all that was recorded before its kick-off."""
    head = container.store.event_log.head()

    def done() -> bool:
        if container.status.relay_state().position < head:
            return False
        return all(lag == 0 for lag in container.status.consumer_lag(ALL).values())

    return wait_until(done, container.settings.fhir_export_catch_up_s, 0.1)


def _hooks(container: Container, user: Principal) -> Hooks:
    def audit(job: Job, rows: int) -> None:
        ctx = command_context(user, reason=job.scope)
        container.store.record_audit_read(ctx, RecordAuditRead("export", None, None, rows))

    return Hooks(catch_up=lambda: _catch_up(container), audit=audit)


def _information(text: str) -> dict[str, object]:
    return operation_outcome(issue(text, code="informational", severity="information"))


def _kick_off(
    request: Request,
    container: Container,
    guards: GuardsDep,
    runner: ExportRunner,
    user: Principal,
    level: Level,
) -> Response:
    _check_headers(request)
    asked = params.parse(_query(request), KINDS)
    guards.rates.hit("exports", str(user.user_id))
    now = container.store.clock()
    job = Job(
        job_id=uuid.uuid4(),
        owner_id=user.user_id,
        level=level,
        types=asked.types,
        since=asked.since,
        request_url=str(request.url),
        state="running",
        transaction_time=now,
        created_at=now,
    )
    try:
        runner.start(job, [KINDS[name] for name in asked.types], _hooks(container, user))
    except Busy:
        raise FhirError(
            429,
            "as many exports are running as this server allows; try again later",
            headers={"Retry-After": str(POLL_AFTER_S * 15)},
        ) from None
    status_url = f"{_base(request)}/$export-status/{job.job_id}"
    started = operation_outcome(
        issue("export started", code="informational", severity="information")
    )
    return FhirJSONResponse(started, status_code=202, headers={"Content-Location": status_url})


@router.get("/$export")
def system_export(
    request: Request, container: ContainerDep, user: Compliance, guards: GuardsDep, runner: Runner
) -> Response:
    """Start a Bulk Data export of every served resource type (Prefer: respond-async)."""
    return _kick_off(request, container, guards, runner, user, "system")


@router.get("/Patient/$export")
def patient_export(
    request: Request, container: ContainerDep, user: Compliance, guards: GuardsDep, runner: Runner
) -> Response:
    """Start a Bulk Data export of every patient's resources (Prefer: respond-async)."""
    return _kick_off(request, container, guards, runner, user, "patient")


def _own_job(container: Container, user: Principal, job_id: UUID) -> Job:
    with container.reads.connection() as conn:
        job = jobs.find(conn, job_id)
    if job is None or job.owner_id != user.user_id:
        raise FhirError(404, "no such export job", code="not-found")
    return job


@router.get("/$export-status/{job_id}")
def export_status(
    request: Request, container: ContainerDep, user: Compliance, runner: Runner, job_id: UUID
) -> Response:
    """An export's progress (202) until it is done, then its manifest (200)."""
    del runner  # taken for its sweep of expired jobs
    job = _own_job(container, user, job_id)
    if job.state == "running":
        headers = {"X-Progress": job.progress or "started", "Retry-After": str(POLL_AFTER_S)}
        return Response(status_code=202, headers=headers)
    if job.state == "failed":
        raise FhirError(500, job.error or "the export failed", code="exception")
    base = _base(request)
    files = [
        OutputFile(f.type, f"{base}/$export-file/{job.job_id}/{f.type}.ndjson", f.count)
        for f in job.output
    ]
    body = manifest(job.transaction_time, job.request_url, files)
    keep = timedelta(seconds=container.settings.fhir_export_keep_s)
    expires = (job.finished_at or job.transaction_time) + keep
    return JSONResponse(body, headers={"Expires": format_datetime(expires.astimezone(UTC), True)})


@router.delete("/$export-status/{job_id}")
def cancel_export(
    container: ContainerDep, user: Compliance, runner: Runner, job_id: UUID
) -> Response:
    """Cancel an export: it stops, its files are removed, its status URL answers 404."""
    _own_job(container, user, job_id)
    runner.cancel(job_id)
    outcome = operation_outcome(
        issue("export cancelled", code="informational", severity="information")
    )
    return FhirJSONResponse(outcome, status_code=202)


@router.get("/$export-file/{job_id}/{file_name}")
def export_file(
    container: ContainerDep, user: Compliance, runner: Runner, job_id: UUID, file_name: str
) -> Response:
    """One NDJSON file of a complete export, for the user who started it."""
    job = _own_job(container, user, job_id)
    type_name = file_name.removesuffix(".ndjson")
    if job.state != "complete" or type_name not in {f.type for f in job.output}:
        raise FhirError(404, "no such export file", code="not-found")
    path = file_of(runner.root, job_id, type_name)
    if not path.is_file():
        raise FhirError(404, "the export's files are gone", code="not-found")
    return FileResponse(path, media_type=NDJSON)
