"""``backbone certs init``: the local CA, the servers' certificate and a client certificate
per principal (``services.principals``), under ``BACKBONE_TLS_DIR`` (``.data/tls``);
``backbone certs hl7-sender APP FACILITY``: an HL7 sending system's client certificate."""

from __future__ import annotations

import typer
from rich.console import Console

from services.local_stack.certificates import ensure_certificates, ensure_hl7_sender
from services.principals import PRINCIPALS
from services.settings import get_settings

app = typer.Typer(help="TLS certificates of the local stack.", no_args_is_help=True)
console = Console()


@app.command()
def init() -> None:
    """Make what is missing or expiring; keep what is valid (keys 0600)."""
    root = get_settings().tls_dir
    made = ensure_certificates(root, [p.name for p in PRINCIPALS])
    summary = ", ".join(made) if made else "nothing to make"
    console.print(f"certificates in {root}: {summary}")


@app.command("hl7-sender")
def hl7_sender(
    application: str = typer.Argument(help="MSH-3, the sending application (e.g. LAB)."),
    facility: str = typer.Argument(help="MSH-4, the sending facility (e.g. NORTH)."),
) -> None:
    """An HL7 sender's certificate for MLLP over TLS: CN APP|FACILITY (kept while valid)."""
    try:
        pair, made = ensure_hl7_sender(get_settings().tls_dir, application, facility)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    state = "made" if made else "kept (still valid)"
    typer.echo(f"{application}|{facility}: {state}")  # plain: paths are never wrapped
    typer.echo(f"certificate: {pair.cert}")
    typer.echo(f"key:         {pair.key}")
