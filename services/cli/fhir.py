"""``backbone fhir import FILE``: a FHIR Bundle or NDJSON file as the backbone's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.bootstrap import Backbone
from services.cli.operator import OperatorOption, operator_context
from services.fhir.importing.encounters import DEFAULT_WARD
from services.fhir.importing.reader import NotFhir, read_bytes
from services.fhir.importing.report import Report, Status
from services.fhir.importing.run import Importer
from services.observability.progress import progress_bars

app = typer.Typer(help="FHIR R4: import Bundles and NDJSON files.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
# The operator is the attending, ordering physician and prescriber of what is imported.
IMPORTERS = ("physician",)


def _print(report: Report) -> None:
    table = Table("resource type", *(s.value for s in Status), title="FHIR import")
    for kind, row in report.counts().items():
        table.add_row(kind, *(str(row[s.value]) for s in Status))
    console.print(table)
    reasons = Table("resource type", "not mappable because", "count")
    for kind, found in report.reasons().items():
        for reason, count in found.items():
            reasons.add_row(kind, reason, str(count))
    if reasons.row_count:
        console.print(reasons)
    console.print(report.summary())


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A FHIR R4 Bundle (JSON) or NDJSON file.")],
    operator: OperatorOption,
    ward: str = typer.Option(DEFAULT_WARD, "--ward", help="The ward of imported encounters."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import the resources; exit 0 when every one is accounted for, 2 on input that is
    not FHIR (nothing is written then)."""
    try:
        source = read_bytes(file.read_bytes())
    except OSError as exc:
        err.print(f"[red]cannot read {file}:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    except NotFhir as exc:
        err.print(f"[red]{file} is not FHIR:[/red] {exc}")
        raise typer.Exit(2) from exc
    backbone = Backbone()
    try:
        ctx = operator_context(backbone, operator, *IMPORTERS)
        with progress_bars(err) as progress:
            task = progress.add_task("importing", total=len(source.entries))
            report = Importer(
                backbone.store,
                ctx,
                source,
                ward=ward,
                attending=ctx.actor.user_id,
                progress=lambda n: progress.advance(task, n),
            ).run()
    finally:
        backbone.close()
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        _print(report)
    if len(report.lines) != len(source.entries):  # pragma: no cover - a bug, never silent
        err.print("[red]some resources were not accounted for[/red]")
        raise typer.Exit(1)
