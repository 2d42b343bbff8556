"""``backbone schema export``: write the event contract's JSON Schemas to ``docs/events/``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from events.schema_export import export
from services.settings import REPO_ROOT

app = typer.Typer(help="The published event contract.", no_args_is_help=True)
console = Console()
DEFAULT_OUT = REPO_ROOT / "docs" / "events"


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option(help="Directory to write to.")] = DEFAULT_OUT,
) -> None:
    """Write the envelope and every payload version's JSON Schema, and the README table."""
    written = export(out)
    console.print(f"wrote {len(written)} files to {out}")
