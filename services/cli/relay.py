"""``backbone relay``: publish every stored event to Kafka; ``--status`` shows lag and health.

Two may run on one store: one publishes, the other stands by (``services.relay.leadership``).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

from services.bootstrap import Backbone
from services.cli.stopping import stop_on_signals
from services.relay.relay import RelayHalted

console = Console()
# States of the store's relay that mean events are not going out.
NOT_RELAYING = ("halted", "kafka_unreachable", "database_unreachable")


def relay(
    status: bool = typer.Option(False, "--status", help="Print lag, rate and health, then exit."),
) -> None:
    """Follow the store's log and publish each event to its area topic (Ctrl-C stops)."""
    backbone = Backbone(kafka_principal="relay", database_role="relay")
    if status:
        try:
            state, head = backbone.status.relay()
            instances = backbone.status.relay_instances()
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
            "instances": [
                {"instance": i.instance, "state": i.state, "seen_s_ago": round(i.age_s, 1)}
                for i in instances
            ],
        }
        console.print_json(json.dumps(report))
        if state.state in NOT_RELAYING:
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
