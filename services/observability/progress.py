"""The progress display of every long job (replay, rebuild, export, verify, demo, bench)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bars(console: Console, label: str = "{task.description}") -> Progress:
    """Bars with a label, the count done of the total, and the time elapsed."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
