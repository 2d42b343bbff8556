"""``backbone relay``: publish every stored event to Kafka; ``--status`` shows lag and health."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from services.bootstrap import Backbone
from services.cli.stopping import stop_on_signals
from services.relay.relay import RelayHalted

console = Console()


def relay(
    status: bool = typer.Option(False, "--status", help="Print lag, rate and health, then exit."),
) -> None:
    """Follow the store's log and publish each event to its area topic (Ctrl-C stops)."""
    backbone = Backbone(kafka_principal="relay")
    if status:
        try:
            state, head = backbone.status.relay()
        finally:
            backbone.close()
        report = {
            "name": state.name,
            "state": state.state,
            "position": state.position,
            "head": head,
            "lag": max(head - state.position, 0),
            "published_total": state.published_total,
            "errors_total": state.errors_total,
            "events_per_s": round(state.events_per_s, 1),
            "last_error": state.last_error,
            "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        }
        console.print_json(json.dumps(report))
        if state.state in ("halted", "kafka_unreachable"):
            raise typer.Exit(1)
        return
    stop = stop_on_signals()
    try:
        backbone.relay().run(stop)
    except RelayHalted as exc:
        console.print(f"[red]relay halted:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        backbone.close()
