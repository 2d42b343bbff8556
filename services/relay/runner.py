"""Builds a relay from settings (the CLI and tests call this)."""

from __future__ import annotations

from psycopg import sql
from psycopg_pool import ConnectionPool

from events.settings import StoreSettings, get_store_settings
from events.store.verification import load_signing_key
from services.bootstrap import build_key_pool, build_store, schema_lock
from services.relay.checkpoint import Checkpoint, RelayStatus, read_status
from services.relay.publisher import KafkaPublisher
from services.relay.relay import Relay
from services.relay.wakeup import StoreWakeup
from services.settings import ServiceSettings


def build_relay(settings: ServiceSettings, store_settings: StoreSettings) -> Relay:
    store = build_store(store_settings)
    pool = build_key_pool(store_settings)
    with schema_lock(pool):
        checkpoint = Checkpoint(pool, _relay_name(settings, store_settings))
    publisher = KafkaPublisher(
        settings.kafka_bootstrap, f"backbone-{settings.relay_name}", settings.relay_flush_timeout_s
    )
    sign_head, wakeup = None, None
    if store.on_postgres:
        verifier = store.chain_verifier(pool, load_signing_key(store_settings.checkpoint_key_file))
        sign_head = verifier.sign_head
        wakeup = StoreWakeup(store_settings.database_url, store.commit_channel)
    return Relay(
        store,
        checkpoint,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        max_backoff_s=settings.relay_max_backoff_s,
        sign_head=sign_head,
        checkpoint_interval_s=settings.chain_checkpoint_interval_s,
        wakeup=wakeup,
    )


def _relay_name(settings: ServiceSettings, store_settings: StoreSettings) -> str:
    return f"{settings.relay_name}:{store_settings.store_name}"


def store_head_position(store_settings: StoreSettings | None = None) -> int:
    """The store's newest position (0 when empty or not created yet)."""
    settings = store_settings or get_store_settings()
    pool = build_key_pool(settings)
    try:
        return _head(pool, settings)
    finally:
        pool.close()


def _head(pool: ConnectionPool, store_settings: StoreSettings) -> int:
    with pool.connection() as conn:
        table = f"{store_settings.store_name}_events"
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if not exists or exists[0] is None:
            return 0
        query = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}")
        row = conn.execute(query.format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0


def relay_status(
    settings: ServiceSettings, store_settings: StoreSettings, pool: ConnectionPool | None = None
) -> tuple[RelayStatus, int]:
    """The relay's recorded status and the store's head position (for the lag).

    Long-running callers (the API) pass their own pool; one-off commands get a short-lived one.
    """
    if pool is not None:
        name = _relay_name(settings, store_settings)
        return read_status(pool, name), _head(pool, store_settings)
    own = build_key_pool(store_settings)
    try:
        return relay_status(settings, store_settings, own)
    finally:
        own.close()
