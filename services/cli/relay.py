"""``backbone relay``: publish every stored event to Kafka; ``--status`` shows lag and health."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from events.settings import get_store_settings
from services.relay.relay import RelayHalted
from services.relay.runner import build_relay, relay_status
from services.settings import get_settings

console = Console()


def relay(
    status: bool = typer.Option(False, "--status", help="Print lag, rate and health, then exit."),
) -> None:
    """Follow the store's log and publish each event to its area topic (Ctrl-C stops)."""
    settings, store_settings = get_settings(), get_store_settings()
    if status:
        state, head = relay_status(settings, store_settings)
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
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        build_relay(settings, store_settings).run(stop)
    except RelayHalted as exc:
        console.print(f"[red]relay halted:[/red] {exc}")
        raise typer.Exit(2) from exc
