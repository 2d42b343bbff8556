"""``backbone up | down | status``: the whole backbone, infrastructure and processes."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from projections.registry import ALL
from services.bootstrap import Backbone
from services.cli.migrate import migrate
from services.cli.relay import NOT_RELAYING
from services.local_stack.errors import InfraError
from services.local_stack.processes import port_in_use, wait_until
from services.local_stack.stack import LocalStack
from services.settings import get_settings
from services.status import api_status
from services.supervisor import SUPERVISOR, Supervisor
from services.watchdog import read_state

console = Console()
err = Console(stderr=True)


def up() -> None:
    """Start PostgreSQL and Kafka, then the backbone's processes in the background, and the
    supervisor that restarts them when they crash."""
    settings = get_settings()
    try:
        LocalStack(settings).up()
    except InfraError as exc:
        err.print(f"[red]up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    migrate()  # the tables, made as the owner: the services' own roles may not make them
    started = Supervisor(settings).start_all()
    console.print(
        f"infrastructure up; started: {', '.join(started) or 'nothing (already running)'}"
    )
    host, port = settings.key_service_host, settings.key_service_port
    if "keys" in started and not wait_until(lambda: port_in_use(port, host), 60, 0.3):
        err.print(f"[red]the key service does not listen on {host}:{port}[/red]; see keys.log")
        raise typer.Exit(1)
    # Like the infrastructure, up means answering: the API over HTTPS, verified by the CA.
    if "api" in started and not wait_until(lambda: api_status(settings).up, 60, 0.3):
        err.print(
            f"[red]the API does not answer at {settings.api_url}[/red]; see .data/logs/api.log"
        )
        raise typer.Exit(1)


def down() -> None:
    """Stop the supervisor, then the background processes, then Kafka and PostgreSQL."""
    settings = get_settings()
    stopped = Supervisor(settings).stop_all()
    try:
        stopped += LocalStack(settings).down()
    except InfraError as exc:
        err.print(f"[red]down failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _components() -> list[dict[str, Any]]:
    settings = get_settings()
    components: list[dict[str, Any]] = [
        {"name": h.name, "address": h.address, "up": h.up, "detail": h.detail}
        for h in LocalStack(settings).status()
    ]
    supervisor = Supervisor(settings)
    database_up = components[0]["up"]
    backbone = Backbone(settings, kafka_principal="api")  # it describes, never reads
    try:
        _add_processes(components, supervisor, backbone, database_up)
    finally:
        backbone.close()
    return components


def _add_processes(
    components: list[dict[str, Any]], supervisor: Supervisor, backbone: Backbone, database_up: bool
) -> None:
    for process in supervisor.processes:
        pid = supervisor.pid(process)
        entry: dict[str, Any] = {
            "name": process.name,
            "address": f"pid {pid}" if pid else "-",
            "up": pid is not None,
        }
        if process.name in ("hl7", "api"):
            listening = backbone.status.hl7() if process.name == "hl7" else backbone.status.api()
            entry["address"], entry["detail"] = listening.address, listening.detail
            entry["up"] = entry["up"] and listening.up
        if process.name == "keys":
            host, port = backbone.settings.key_service_host, backbone.settings.key_service_port
            entry["address"] = f"https://{host}:{port}"
            entry["up"] = entry["up"] and port_in_use(port, host)
        if process.name == "projections" and database_up:
            statuses = backbone.status.projections(ALL)
            lag = backbone.status.consumer_lag(ALL)
            entry["lag"] = sum(lag.values())
            entry["lag_by_projection"] = lag
            entry["detail"] = f"dead-lettered: {sum(s.deadlettered_total for s in statuses)}"
            halted = [f"{s.name}: {s.halted}" for s in statuses if s.halted]
            if halted:
                entry["up"] = False
                entry["detail"] = "halted: " + "; ".join(halted)
        if process.name == SUPERVISOR.name:
            entry["detail"] = _supervision(read_state(supervisor.settings))
        if process.name == "relay" and database_up:
            state, head = backbone.status.relay()
            entry["lag"] = max(head - state.position, 0)
            instances = backbone.status.relay_instances()
            standby = [i for i in instances if i.state == "standby" and i.age_s < 30]
            entry["detail"] = state.state + (f"; {len(standby)} standby" if standby else "")
            entry["up"] = entry["up"] and state.state not in NOT_RELAYING
        components.append(entry)


def _supervision(state: dict[str, dict[str, Any]]) -> str:
    """What the supervisor did: restarts per process in its window, what it gave up on."""
    restarted = [
        f"{name} x{s['restarts_total']}" for name, s in state.items() if s.get("restarts_total")
    ]
    gave_up = [name for name, s in state.items() if s.get("gave_up")]
    parts = [f"restarted: {', '.join(restarted)}" if restarted else "no restarts"]
    if gave_up:
        parts.append(f"gave up on: {', '.join(gave_up)}")
    return "; ".join(parts)


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every component with its address, health and (for consumers) lag; exit 1 if any is down."""
    components = _components()
    if as_json:
        console.print_json(json.dumps(components))
    else:
        table = Table("component", "address", "health", "detail", "lag")
        for c in components:
            table.add_row(
                c["name"],
                c["address"],
                "[green]up[/green]" if c["up"] else "[red]down[/red]",
                str(c.get("detail", "")),
                str(c.get("lag", "")),
            )
        console.print(table)
    if not all(c["up"] for c in components):
        raise typer.Exit(1)
