"""``backbone project`` (keep the read tables) and ``backbone rebuild NAME|all``."""

from __future__ import annotations

import json
from functools import partial

import typer
from rich.console import Console
from rich.progress import TaskID

from projections.engine.base import Projection
from projections.engine.database import create_tables
from projections.engine.kafka_clients import kafka_connection
from projections.engine.offsets import start_offsets
from projections.engine.rebuild import rebuild as rebuild_projection
from projections.engine.service import run_projections
from projections.registry import ALL, named
from services.bootstrap import Backbone
from services.cli.stopping import stop_on_signals
from services.observability.progress import progress_bars

console = Console()
err = Console(stderr=True)


def _chosen(name: str | None) -> tuple[Projection, ...]:
    if name is None or name == "all":
        return ALL
    try:
        return (named(name),)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def project(
    only: str | None = typer.Option(None, "--only", help="Run one projection (default: all)."),
    status: bool = typer.Option(False, "--status", help="Print positions and counts, then exit."),
) -> None:
    """Consume Kafka into the read tables (one consumer group per projection); Ctrl-C stops."""
    projections = _chosen(only)
    backbone = (
        Backbone(kafka_principal="api")
        if status
        else Backbone(kafka_principal="projections", database_role="projections")
    )
    if status:
        head = backbone.status.head()
        report = [
            {
                "name": s.name,
                "position": s.position,
                "lag": max(head - s.position, 0),
                "applied_total": s.applied_total,
                "deadlettered_total": s.deadlettered_total,
                "halted": s.halted,
            }
            for s in backbone.status.projections(projections)
        ]
        console.print_json(json.dumps(report))
        backbone.close()
        return
    stop = stop_on_signals()
    try:
        run_projections(projections, backbone.reads, backbone.projection_settings, stop)
    finally:
        backbone.close()


def rebuild(name: str = typer.Argument(..., help="A projection name, or 'all'.")) -> None:
    """Rebuild from the event store into shadow tables, then swap them in atomically."""
    projections = _chosen(name)
    backbone = Backbone()
    pool, store, schema = backbone.reads, backbone.store, backbone.projection_settings.read_schema
    with pool.connection() as conn:
        create_tables(conn, schema)
    head = store.event_log.head()
    for projection in projections:
        with progress_bars(console) as progress:
            task = progress.add_task(f"rebuild {projection.name}", total=head)

            def advance(_: int, position: int, task_id: TaskID = task) -> None:
                progress.update(task_id, completed=min(position, head))

            kafka = kafka_connection(backbone.projection_settings)
            starts = partial(start_offsets, kafka, kafka.topics.names(projection.topics))
            report = rebuild_projection(pool, store, projection, schema, advance, starts)
            progress.update(task, completed=head)
        console.print(
            f"rebuilt {report.projection}: {report.events} events read, "
            f"{report.applied} applied, position {report.position}, "
            f"{report.seconds:.1f}s, {report.events_per_s:,.0f} events/s"
        )
