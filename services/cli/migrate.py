"""``backbone migrate``: make every table of the store and its read schema, and grant the
services' database roles what each needs (``services/migration.py``). Idempotent."""

from __future__ import annotations

import typer
from rich.console import Console

from services.bootstrap import Backbone
from services.migration import migrate as run_migration

console = Console()


def migrate() -> None:
    """Create or update the tables as the migration role, then grant the services' roles."""
    backbone = Backbone()
    try:
        done = run_migration(backbone)
    finally:
        backbone.close()
    handed = f"; read tables handed to the projections' role: {len(done.handed_over)}"
    console.print(
        f"migrated store {backbone.store_settings.store_name!r} and read schema "
        f"{backbone.projection_settings.read_schema!r}: {done.granted} grants"
        + (handed if done.handed_over else "")
    )
    if not backbone.settings.database_service_roles:
        console.print("BACKBONE_DATABASE_SERVICE_ROLES=false: the services use database_url")
        raise typer.Exit(0)
