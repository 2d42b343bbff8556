"""The composition root: builds the store, its connection pools and keyring from settings.

The API, relay, consumers and CLI call these builders and stay thin; nothing connects at
import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from events.settings import StoreSettings, get_store_settings
from events.store.application import ClinicalStore
from events.store.keys import Keyring, PostgresKeyStore, load_master_key


def store_env(settings: StoreSettings) -> dict[str, str]:
    """The ``eventsourcing`` environment for the PostgreSQL store."""
    info = conninfo_to_dict(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "backbone")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "backbone")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_POOL_SIZE": str(settings.store_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.store_pool_overflow),
        "POSTGRES_LOCK_TIMEOUT": str(settings.store_lock_timeout_s),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "CREATE_TABLE": "y",
    }


def build_key_pool(settings: StoreSettings) -> ConnectionPool:
    pool = ConnectionPool(
        settings.database_url, min_size=1, max_size=4, open=True, kwargs={"autocommit": True}
    )
    pool.wait(timeout=30)
    return pool


SCHEMA_LOCK = 7_346_202


@contextmanager
def schema_lock(pool: ConnectionPool) -> Iterator[None]:
    """Serialise table creation across processes: concurrent ``CREATE TABLE IF NOT EXISTS``
    of one table can fail in PostgreSQL, and the API, relay and projections start together."""
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def build_store(settings: StoreSettings | None = None) -> ClinicalStore:
    """The PostgreSQL-backed clinical store with per-patient encryption."""
    settings = settings or get_store_settings()
    master_key = load_master_key(settings.master_key_file)
    pool = build_key_pool(settings)
    with schema_lock(pool):
        keys = PostgresKeyStore(pool, f"{settings.store_name}_data_keys")
        keyring = Keyring(master_key, keys, settings.key_cache_ttl_s)
        store = ClinicalStore(store_env(settings), keyring, master_key, name=settings.store_name)
        store.prepare()
        return store
