"""``backbone audit export``: the access and change logs of a patient or user, CSV or JSONL."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from events.commands.access import RecordAuditRead
from services.audit_export import export_rows, render
from services.bootstrap import Backbone
from services.cli.operator import OperatorOption, operator_context
from services.observability.progress import progress_bars

app = typer.Typer(help="Compliance exports.", no_args_is_help=True)
err = Console(stderr=True)


@app.command("export")
def export(
    patient: Annotated[UUID | None, typer.Option("--patient", help="A patient id.")] = None,
    user: Annotated[UUID | None, typer.Option("--user", help="A user id.")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="ISO time (UTC if no offset).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    *,
    operator: OperatorOption,
) -> None:
    """Every change and read of one patient, or by one user, from the event store."""
    if (patient is None) == (user is None):
        err.print("[red]give exactly one of --patient or --user[/red]")
        raise typer.Exit(2)
    if fmt not in ("csv", "jsonl"):
        err.print("[red]--format must be csv or jsonl[/red]")
        raise typer.Exit(2)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=datetime.now().astimezone().tzinfo).astimezone()
    backbone = Backbone()
    store = backbone.store
    try:
        ctx = operator_context(backbone, operator, "compliance")
    except typer.Exit:
        backbone.close()
        raise
    head = store.event_log.head()
    target = out.open("w", newline="") if out else sys.stdout
    count = 0
    try:
        with progress_bars(err) as progress:
            task = progress.add_task("scanning the store", total=head)
            rows = export_rows(store, patient, user, since, lambda n: progress.advance(task, n))
            for chunk in render(rows, fmt):
                target.write(chunk)
                count += chunk.count("\n")
        exported = count - 1 if fmt == "csv" and count else count
        # The export is itself audited: who took which trail out, and how much of it.
        store.record_audit_read(ctx, RecordAuditRead("export", patient, user, exported))
    finally:
        if out:
            target.close()
        backbone.close()
    err.print(f"audit export: {exported} events from {head} scanned, format {fmt}")
