"""``backbone project`` (keep the read tables) and ``backbone rebuild NAME|all``."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from projections.engine.base import Projection
from projections.engine.database import create_tables, read_pool
from projections.engine.rebuild import rebuild as rebuild_projection
from projections.engine.service import projection_statuses, run_projections
from projections.registry import ALL, named
from projections.settings import get_projection_settings
from services.bootstrap import build_store
from services.relay.runner import store_head_position

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
    settings = get_projection_settings()
    projections = _chosen(only)
    pool = read_pool(settings)
    if status:
        head = store_head_position()
        report = [
            {
                "name": s.name,
                "position": s.position,
                "lag": max(head - s.position, 0),
                "applied_total": s.applied_total,
                "deadlettered_total": s.deadlettered_total,
            }
            for s in projection_statuses(pool, projections)
        ]
        console.print_json(json.dumps(report))
        return
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run_projections(projections, pool, settings, stop)


def rebuild(name: str = typer.Argument(..., help="A projection name, or 'all'.")) -> None:
    """Rebuild from the event store into shadow tables, then swap them in atomically."""
    settings = get_projection_settings()
    projections = _chosen(name)
    pool = read_pool(settings)
    with pool.connection() as conn:
        create_tables(conn, settings.read_schema)
    store = build_store()
    head = store.event_log.head()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    for projection in projections:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"rebuild {projection.name}", total=head)

            def advance(_: int, position: int, task_id: TaskID = task) -> None:
                progress.update(task_id, completed=min(position, head))

            report = rebuild_projection(pool, store, projection, settings.read_schema, advance)
            progress.update(task, completed=head)
        console.print(
            f"rebuilt {report.projection}: {report.events} events read, "
            f"{report.applied} applied, position {report.position}, "
            f"{report.seconds:.1f}s, {report.events_per_s:,.0f} events/s"
        )
