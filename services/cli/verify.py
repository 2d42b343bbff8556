"""``backbone verify``: recompute the store's hash chains, check them against the signed
checkpoints (in the database and in the witness outside it) and sign the verified head.

``backbone verify --chain-existing --operator NAME`` chains a store that was never chained
(one written before chaining existed): refused when any chain link, signed checkpoint or
witness line exists, logged with the operator's name and witnessed at once. Nothing else
ever rebuilds a chain; in particular no process does at start-up.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console

from events.store.verification import ChainRefused, ChainVerifier
from services.bootstrap import Backbone
from services.cli.operator import operator_actor
from services.observability.progress import progress_bars

console = Console()
err = Console(stderr=True)

CHAINERS = ("admin", "compliance")


def verify(
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint/--no-checkpoint", help="Sign the verified head.")
    ] = True,
    chain_existing: Annotated[
        bool,
        typer.Option(
            "--chain-existing",
            help="Chain a store that was never chained (refused otherwise), then verify.",
        ),
    ] = False,
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator",
            show_default="the OS user",
            help="With --chain-existing: the admin or compliance account doing it.",
        ),
    ] = None,
) -> None:
    """Recompute every chain link; report OK or the first broken position (exit 1)."""
    backbone = Backbone()
    try:
        verifier = backbone.verifier()
        if chain_existing:
            _chain_existing(backbone, verifier, operator or getpass.getuser())
        head = backbone.store.event_log.head()
        with progress_bars(console) as progress:
            task = progress.add_task("verifying chains", total=head)
            verdict = verifier.verify(lambda n: progress.advance(task, n))
        signed = verifier.checkpoint(verdict) if checkpoint and verdict.ok else None
    finally:
        backbone.close()
    if not verdict.ok:
        console.print(
            f"[red]BROKEN[/red] at position {verdict.broken_at}: {verdict.problem} "
            f"({verdict.checked} events verified before it)",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    note = f"; signed checkpoint at {signed}" if signed else ""
    console.print(f"OK: {verdict.checked} events verified up to position {verdict.head}{note}")


def _chain_existing(backbone: Backbone, verifier: ChainVerifier, operator: str) -> None:
    """The explicit, audited chaining of a store that has never been chained."""
    actor = operator_actor(backbone.store, operator, *CHAINERS)
    try:
        chained, position = verifier.chain_existing(f"{operator} ({actor.user_id})")
    except ChainRefused as exc:
        err.print(f"[red]not chained:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    where = f", witnessed at position {position}" if position else ""
    err.print(f"chained {chained} events{where}")
