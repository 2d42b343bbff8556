"""``backbone backup --out DIR`` and ``backbone restore DIR --store NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from events.settings import get_store_settings
from events.store.dump import RestoreRefused
from events.store.keys import MasterKeyMissing
from services.backup import BackupRefused, check_backup, restore_backup, take_backup
from services.observability.progress import progress_bars

console = Console()
err = Console(stderr=True)


def backup(
    out: Annotated[Path, typer.Option("--out", help="A new or empty directory for this backup.")],
) -> None:
    """Write an encrypted, consistent backup of the store (events, chain, wrapped keys)."""
    settings = get_store_settings()
    try:
        with progress_bars(err) as progress:
            task = progress.add_task("dumping the store", total=None)
            manifest = take_backup(settings, out, lambda n: progress.advance(task, n))
    except (BackupRefused, RestoreRefused, MasterKeyMissing) as exc:
        err.print(f"[red]no backup:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"backup of store {manifest.store} written to {out}: {manifest.rows} rows in "
        f"{len(manifest.tables)} tables up to position {manifest.head}, "
        f"{manifest.ciphertext_bytes} bytes encrypted under backup key {manifest.backup_key}"
    )


def restore(
    directory: Annotated[Path, typer.Argument(help="A directory `backbone backup` wrote.")],
    store: Annotated[
        str | None, typer.Option("--store", help="The empty store to restore into.")
    ] = None,
    check_only: Annotated[
        bool, typer.Option("--check-only", help="Only check the backup's integrity.")
    ] = False,
) -> None:
    """Check a backup's integrity, then load it into an empty store (all or nothing)."""
    settings = get_store_settings()
    target = store or settings.store_name
    try:
        if check_only:
            manifest = check_backup(settings, directory)
            console.print(f"backup OK: store {manifest.store}, {manifest.rows} rows")
            return
        with progress_bars(err) as progress:
            task = progress.add_task(f"restoring into {target}", total=None)
            manifest = restore_backup(
                settings, directory, target, lambda n: progress.advance(task, n)
            )
    except (BackupRefused, RestoreRefused, MasterKeyMissing) as exc:
        err.print(f"[red]not restored:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"restored store {manifest.store} (taken {manifest.taken_at}) into {target}: "
        f"{manifest.rows} rows up to position {manifest.head}; run `backbone verify` next"
    )
