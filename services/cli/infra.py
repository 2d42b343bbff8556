"""``backbone infra up | down | status``: the local PostgreSQL and Kafka."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from services.local_stack.errors import InfraError
from services.local_stack.stack import LocalStack
from services.settings import get_settings

app = typer.Typer(
    help="Start, stop and check the local PostgreSQL and Kafka.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _stack() -> LocalStack:
    return LocalStack(get_settings())


@app.command()
def fetch() -> None:
    """Fetch the Kafka jars from Maven Central unless the cached copy is current."""
    try:
        fetched = _stack().kafka.ensure_jars()
    except InfraError as exc:
        err.print(f"[red]fetching Kafka failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print("kafka jars fetched" if fetched else "kafka jars already cached")


@app.command()
def up() -> None:
    """Start PostgreSQL and Kafka (idempotent), wait until both answer, create the topics."""
    try:
        report = _stack().up()
    except InfraError as exc:
        err.print(f"[red]infra up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if report.changed:
        started = ", ".join(report.started) or "nothing (already running)"
        acls = f"ACLs granted: {report.acls.created}, revoked: {report.acls.deleted}"
        console.print(f"started: {started}; topics created: {len(report.created_topics)}; {acls}")
    else:
        console.print("already up: postgresql and kafka answer, all topics and ACLs exist")


@app.command()
def down() -> None:
    """Stop Kafka and PostgreSQL; their data stays under .data/."""
    try:
        stopped = _stack().down()
    except InfraError as exc:
        err.print(f"[red]infra down failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each component with its address and health; exit 1 if any is down."""
    try:
        healths = _stack().status()
    except InfraError as exc:
        err.print(f"[red]infra status failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {"name": h.name, "address": h.address, "up": h.up, "detail": h.detail}
                    for h in healths
                ]
            )
        )
    else:
        table = Table("component", "address", "health", "detail")
        for h in healths:
            table.add_row(
                h.name, h.address, "[green]up[/green]" if h.up else "[red]down[/red]", h.detail
            )
        console.print(table)
    if not all(h.up for h in healths):
        raise typer.Exit(1)
