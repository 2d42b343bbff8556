"""``backbone demo``: demo users and a synthetic population loaded through the API."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from services.bootstrap import Backbone
from services.demo import LOADER, DemoClient, ensure_loader, ensure_users, load_population
from services.local_stack.processes import api_healthy, wait_until
from services.observability.progress import progress_bars
from services.settings import get_settings
from services.tls import api_client_context

console = Console()


def demo(
    patients: int = typer.Option(200, "--patients", min=0, help="How many patients to load."),
) -> None:
    """Create one user per role (passwords in .data/demo/credentials.json) and load patients."""
    settings = get_settings()
    credentials_file = settings.demo_dir / "credentials.json"
    backbone = Backbone(settings)
    try:
        credentials = ensure_users(backbone.auth, credentials_file)
        loader = ensure_loader(backbone.auth)
    finally:
        backbone.close()
    verify = api_client_context(settings)
    if not wait_until(lambda: api_healthy(settings.api_url, verify), 60, 0.5):
        console.print(
            f"[red]the API does not answer at {settings.api_url}; start it (backbone up)[/red]"
        )
        raise typer.Exit(1)
    client = DemoClient(settings.api_url, {**credentials, LOADER: loader}, verify)
    started = time.monotonic()
    try:
        with progress_bars(console) as progress:
            task = progress.add_task("loading patients", total=patients)
            report = load_population(client, patients, advance=lambda: progress.advance(task))
    finally:
        client.close()
    elapsed = time.monotonic() - started
    console.print(
        f"demo: {report.patients} patients loaded, {report.skipped} already there, "
        f"{report.requests} requests in {elapsed:.1f}s "
        f"({report.requests / max(elapsed, 1e-6):.0f}/s); credentials in {credentials_file}"
    )
