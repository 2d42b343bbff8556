"""``backbone hl7``: the MLLP listener; ``send``, ``rejected`` and ``replay`` beside it."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.bootstrap import Backbone
from services.hl7.ack import read_header
from services.hl7.client import SendFailed, message_of_file, read, send
from services.hl7.intake import Inbound, Unavailable
from services.hl7.ledger import UnreadableMessage, unseal
from services.hl7.listener import Listener, build_intake, open_ledger
from services.hl7.settings import get_hl7_settings
from services.tls import CertificatesMissing, client_context

app = typer.Typer(
    help="HL7 v2 over MLLP: without a subcommand, listen (BACKBONE_HL7_HOST:PORT).",
    invoke_without_command=True,
)
console = Console()
err = Console(stderr=True)


@app.callback()
def listen(ctx: typer.Context) -> None:
    """Listen for MLLP messages and answer each with its ACK (SIGTERM or Ctrl-C stops)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_hl7_settings()
    backbone = Backbone(pool_size=settings.workers + 4, database_role="hl7")
    try:
        listener = Listener(build_intake(backbone, settings), settings)
        asyncio.run(_until_signalled(listener))
    finally:
        backbone.close()


async def _until_signalled(listener: Listener) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await listener.run(stop)


def _print_ack(ack: bytes) -> str:
    """Print an ACK one segment a line; its MSA-1."""
    text = ack.decode("utf-8", "replace")
    typer.echo(text.strip("\r").replace("\r", "\n"))  # unwrapped: one segment a line
    return read(ack).code


@app.command("send")
def send_file(
    file: Annotated[
        Path, typer.Argument(help="The message (segments separated by CR, LF or CRLF).")
    ],
    host: str | None = typer.Option(None, "--host", help="Default: BACKBONE_HL7_HOST."),
    port: int | None = typer.Option(None, "--port", help="Default: BACKBONE_HL7_PORT."),
    tls: bool | None = typer.Option(
        None,
        "--tls/--no-tls",
        help="MLLP over TLS, the listener verified by the CA (default: BACKBONE_HL7_TLS).",
    ),
    cert: Annotated[
        Path | None, typer.Option("--cert", help="With --tls: `backbone certs hl7-sender`'s PEM.")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="With --tls: its private key (PEM).")
    ] = None,
) -> None:
    """Send one message and print its ACK; exit 1 on AE or AR, 2 if nothing answered."""
    settings = get_hl7_settings()
    context = None
    if settings.tls if tls is None else tls:
        if cert is None or key is None:
            err.print("[red]--tls needs --cert and --key (backbone certs hl7-sender)[/red]")
            raise typer.Exit(2)
        try:
            context = client_context(settings.ca_file, cert, key)
        except CertificatesMissing as exc:
            err.print(f"[red]{exc.code}[/red]")
            raise typer.Exit(2) from exc
    try:
        message = message_of_file(file)
    except OSError as exc:
        err.print(f"[red]cannot read {file}:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    target_host, target_port = host or settings.host, port or settings.port
    try:
        ack = send(message, target_host, target_port, settings.send_timeout_s, context)
        code = _print_ack(ack)
    except SendFailed as exc:
        err.print(f"[red]send failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    if code != "AA":
        err.print(f"[red]the message was refused ({code})[/red]")
        raise typer.Exit(1)


@app.command("rejected")
def rejected(
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    everything: bool = typer.Option(False, "--all", help="Include those replayed since."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The messages answered AE or AR, with their reason (never their content)."""
    backbone = Backbone()
    try:
        rows = open_ledger(backbone).rejected(limit, include_replayed=everything)
    finally:
        backbone.close()
    if as_json:
        listed = [
            {
                "id": r.id,
                "received_at": r.received_at.isoformat(),
                "sender": r.sender,
                "message_type": r.message_type,
                "control_id": r.control_id,
                "code": r.code,
                "error_code": r.error_code,
                "reason": r.reason,
                "attempts": r.attempts,
                "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
            }
            for r in rows
        ]
        console.print_json(json.dumps(listed))
        return
    table = Table("id", "received at", "sender", "type", "control id", "code", "reason")
    for r in rows:
        code = f"{r.code} {r.error_code}" + (" (replayed)" if r.replayed_at else "")
        table.add_row(
            str(r.id),
            r.received_at.isoformat(timespec="seconds"),
            r.sender or "-",
            r.message_type or "-",
            r.control_id or "-",
            code,
            r.reason,
        )
    console.print(table)


@app.command("replay")
def replay(
    rejected_id: Annotated[int, typer.Argument(help="The id `backbone hl7 rejected` shows.")],
) -> None:
    """Apply a rejected message again and print the new ACK; exit 1 unless it is AA."""
    backbone = Backbone()
    try:
        intake = build_intake(backbone, get_hl7_settings())
        try:
            key_id, owner, sealed, replayed_at = intake.ledger.kept(rejected_id)
        except KeyError:
            err.print(f"[red]no rejected message {rejected_id}[/red]")
            raise typer.Exit(2) from None
        if replayed_at is not None:
            err.print(f"message {rejected_id} was replayed already ({replayed_at.isoformat()})")
            raise typer.Exit(0)
        try:
            text = unseal(intake.store, key_id, owner, sealed)
        except UnreadableMessage as exc:
            err.print(f"[red]message {rejected_id} cannot be replayed:[/red] {exc}")
            raise typer.Exit(2) from exc
        inbound = Inbound(text, intake.clock(), read_header(text))
        try:
            answer = intake.handle(intake.prepare(inbound), replay_of=rejected_id)
        except Unavailable as exc:
            err.print(f"[red]the store is unavailable ({exc}); nothing was replayed[/red]")
            raise typer.Exit(2) from exc
    finally:
        backbone.close()
    if _print_ack(answer.ack) != "AA":
        err.print(f"[red]message {rejected_id} was refused again[/red]")
        raise typer.Exit(1)
