"""``backbone verify``: recompute the store's hash chains, check and write signed checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from events.settings import get_store_settings
from events.store.verification import load_signing_key
from services.bootstrap import build_key_pool, build_store

console = Console()


def verify(
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint/--no-checkpoint", help="Sign the verified head.")
    ] = True,
) -> None:
    """Recompute every chain link; report OK or the first broken position (exit 1)."""
    settings = get_store_settings()
    store = build_store(settings)
    if not store.on_postgres:
        raise typer.Exit(2)
    verifier = store.chain_verifier(
        build_key_pool(settings), load_signing_key(settings.checkpoint_key_file)
    )
    head = store.event_log.head()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("verifying chains", total=head)
            verdict = verifier.verify(lambda n: progress.advance(task, n))
        signed = verifier.checkpoint(verdict) if checkpoint and verdict.ok else None
    finally:
        store.close()
    if not verdict.ok:
        console.print(
            f"[red]BROKEN[/red] at position {verdict.broken_at}: {verdict.problem} "
            f"({verdict.checked} events verified before it)"
        )
        raise typer.Exit(1)
    note = f"; signed checkpoint at {signed}" if signed else ""
    console.print(f"OK: {verdict.checked} events verified up to position {verdict.head}{note}")
