"""``backbone verify``: recompute the store's hash chains, check and write signed checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from services.bootstrap import Backbone
from services.observability.progress import progress_bars

console = Console()


def verify(
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint/--no-checkpoint", help="Sign the verified head.")
    ] = True,
) -> None:
    """Recompute every chain link; report OK or the first broken position (exit 1)."""
    backbone = Backbone()
    verifier = backbone.verifier()
    head = backbone.store.event_log.head()
    try:
        with progress_bars(console) as progress:
            task = progress.add_task("verifying chains", total=head)
            verdict = verifier.verify(lambda n: progress.advance(task, n))
        signed = verifier.checkpoint(verdict) if checkpoint and verdict.ok else None
    finally:
        backbone.close()
    if not verdict.ok:
        console.print(
            f"[red]BROKEN[/red] at position {verdict.broken_at}: {verdict.problem} "
            f"({verdict.checked} events verified before it)"
        )
        raise typer.Exit(1)
    note = f"; signed checkpoint at {signed}" if signed else ""
    console.print(f"OK: {verdict.checked} events verified up to position {verdict.head}{note}")
