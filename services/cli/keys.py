"""``backbone keys init``: create the master key that wraps every patient's data key."""

from __future__ import annotations

import typer
from rich.console import Console

from events.settings import get_store_settings
from events.store.keys import create_master_key

app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
console = Console()


@app.command()
def init() -> None:
    """Create the master key file (0600) unless it exists."""
    path = get_store_settings().master_key_file
    created = create_master_key(path)
    console.print(f"master key {'created' if created else 'already present'}: {path}")
