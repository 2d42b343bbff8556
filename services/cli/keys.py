"""``backbone keys init | init-backup | rotate | serve``: the master key, the backup key,
rotation, and the key service that hands payload keys to Kafka subscribers."""

from __future__ import annotations

import logging

import typer
from rich.console import Console

from events.settings import get_store_settings
from events.store.application import utc_now
from events.store.keys import create_master_key
from events.store.rotation import RotationRefused, data_key_count, rotate_master_key
from services.backup import create_backup_key
from services.bootstrap import Backbone, schema_lock
from services.cli.operator import OperatorOption, operator_actor
from services.cli.stopping import stop_on_signals
from services.key_audit import record_rotation
from services.keyservice.server import key_server, serve_in_thread
from services.observability.progress import progress_bars

log = logging.getLogger("backbone.keys")
app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ROTATORS = ("admin",)


@app.command()
def init() -> None:
    """Create the master key file (0600) unless it exists."""
    path = get_store_settings().master_key_file
    created = create_master_key(path)
    console.print(f"master key {'created' if created else 'already present'}: {path}")


@app.command("init-backup")
def init_backup() -> None:
    """Create the backup key file (0600) unless it exists; keep it apart from the backups."""
    path = get_store_settings().backup_key_file
    created = create_backup_key(path)
    console.print(f"backup key {'created' if created else 'already present'}: {path}")


@app.command()
def rotate(operator: OperatorOption) -> None:
    """Re-wrap every patient's data key under a new master key (events untouched); the old
    key is kept as ``master.key.retired-<time>`` until you delete it. Recorded as
    ``keys.rotated`` under the operator's account."""
    backbone = Backbone()
    settings = backbone.store_settings
    table = f"{settings.store_name}_data_keys"
    try:
        store = backbone.store  # makes (or migrates) the id key file before the master moves
        actor = operator_actor(store, operator, *ROTATORS)
        with progress_bars(err) as progress:
            total = data_key_count(backbone.pool, table)
            task = progress.add_task("re-wrapping data keys", total=total)
            rotation = rotate_master_key(
                backbone.pool,
                table,
                settings.master_key_file,
                utc_now(),
                lambda n: progress.advance(task, n),
            )
        result = record_rotation(store, actor, rotation)
    except RotationRefused as exc:
        err.print(f"[red]not rotated:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        backbone.close()
    console.print(
        f"master key rotated: {rotation.rewrapped} data keys re-wrapped, {rotation.erased} "
        f"erased keys left erased; new key {rotation.new_fingerprint}, old key "
        f"{rotation.retired_fingerprint} kept as {rotation.retired_file} (delete it once "
        f"every process was restarted); recorded at position {result.position}"
    )


@app.command()
def serve() -> None:
    """Serve payload keys to Kafka subscribers (HTTPS, client certificates required, every
    fetch audited in ``<store>_key_fetches``); SIGTERM or Ctrl-C stops."""
    backbone = Backbone(database_role="keys")
    stop = stop_on_signals()
    try:
        store = backbone.store
        with schema_lock(backbone.pool):
            server = key_server(store, backbone.pool, backbone.settings)
        thread = serve_in_thread(server)
        log.info(
            "key service started",
            extra={"fields": {"store": store.name, "port": server.port}},
        )
        stop.wait()
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()
    finally:
        backbone.close()
