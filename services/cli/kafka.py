"""``backbone kafka client-config NAME``: what a client needs to connect as a principal."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from projections.engine.kafka_clients import kafka_connection
from services.principals import principal
from services.settings import get_settings

app = typer.Typer(help="Kafka clients: TLS and principals.", no_args_is_help=True)
err = Console(stderr=True)


@app.command("client-config")
def client_config(
    name: str = typer.Argument(..., help="A principal of services/principals.py."),
    as_json: bool = typer.Option(
        False, "--json", help="Print kafka-python's keywords as JSON (a --client-config file)."
    ),
) -> None:
    """Bootstrap servers, security protocol, CA, certificate and key of principal NAME."""
    try:
        found = principal(name)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    connection = kafka_connection(get_settings(), found.name)
    missing = connection.missing_files()
    if missing:
        err.print(
            f"[yellow]missing: {', '.join(map(str, missing))}[/yellow] "
            "(`backbone certs init` makes the local CA's files)"
        )
    if as_json:
        typer.echo(json.dumps(connection.as_json(), indent=2))
        return
    rows = [
        ("principal", f"{found.name} ({found.purpose})"),
        ("bootstrap servers", connection.bootstrap),
        ("security protocol", connection.security_protocol),
    ]
    if connection.tls:
        rows += [
            ("CA file", str(connection.ca_file)),
            ("certificate", str(connection.cert_file)),
            ("key", str(connection.key_file)),
        ]
    for label, value in rows:
        typer.echo(f"{label:<18} {value}")
    typer.echo(f"\n{connection.kcat()}")
