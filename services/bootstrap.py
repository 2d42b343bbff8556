"""The composition root: every process gets its parts here, built once, on first use.

``Backbone`` turns the three settings objects into the pools, the store (with its log and
keyring), the Kafka offsets client, the status service, the auth service, the relay and the
retention policy. The API, relay, projections, department consumers, CLI and bench ask it
for what they need and stay thin; nothing connects at import time. Its Kafka clients
connect as the process's principal: the command names its default (``backbone relay`` is
``relay``, ``backbone serve`` is ``api``, tools and tests ``operator``) and
``BACKBONE_KAFKA_PRINCIPAL`` overrides it.

Pools per process (each opened only when first used):
- the store's own pool, inside ``eventsourcing``'s datastore: the library owns it, with its
  per-transaction lock timeout;
- ``pool``: autocommit, on the store's database, for data keys, sessions, checkpoints,
  legal holds and status;
- ``reads``: the read side, whose connections resolve names in the read schema (the
  projections' tables would otherwise be created and looked up in ``public``);
- ``replica_reads``: the same on ``BACKBONE_READ_REPLICA_URL`` when one is set (else
  ``reads`` itself), for the API's reads of projected views that may lag the primary.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.settings import StoreSettings, get_store_settings
from events.store.connect import CONNECT_ARGS, connect_args
from events.store.keys import Keyring, PostgresKeyStore, ensure_id_key, load_master_key
from events.store.migrating import may_create
from events.store.verification import ChainVerifier, load_signing_key
from events.store.witness import Witness
from projections.engine.database import read_pool
from projections.engine.kafka_clients import OPERATOR, kafka_connection
from projections.engine.offsets import TopicEnds
from projections.settings import ProjectionSettings, get_projection_settings
from services.auth.service import AuthService
from services.database_roles import RolesNotProvisioned, as_role, read_passwords, service_role
from services.key_audit import record_id_key_separated
from services.relay.checkpoint import Checkpoint
from services.relay.leadership import Leadership
from services.relay.publisher import KafkaPublisher
from services.relay.relay import Relay
from services.relay.wakeup import StoreWakeup
from services.retention import RetentionPolicy
from services.settings import ServiceSettings, get_settings
from services.status import StatusService, relay_name

SCHEMA_LOCK = 7_346_202


def store_env(settings: StoreSettings, create_tables: bool = True) -> dict[str, str]:
    """The ``eventsourcing`` environment for the PostgreSQL store; ``create_tables`` False
    for a service's own role, which finds the tables made by ``backbone migrate``."""
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
        "CREATE_TABLE": "y" if create_tables else "n",
        # The rest of the URL (sslmode=verify-full, sslrootcert, …): the library has no keys.
        CONNECT_ARGS: make_conninfo("", **connect_args(info)),
    }


def service_pool(settings: StoreSettings, max_size: int = 8) -> ConnectionPool:
    """An autocommit pool on the store's database."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=max_size,
        open=True,
        kwargs={"autocommit": True},
    )
    pool.wait(timeout=30)
    return pool


def role_url(settings: ServiceSettings, service: str) -> Callable[[str], str]:
    """Rewrites a database URL to connect as ``service``'s role (its password from the
    roles file); ``RolesNotProvisioned`` says how to make them when they are missing."""
    role = service_role(service)
    password = read_passwords(settings.roles_file).get(role.role)
    if password is None:
        raise RolesNotProvisioned(
            f"{settings.roles_file} has no password for {role.role}: run `backbone infra up`"
        )
    return lambda url: as_role(url, role, password)


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


class Backbone:
    """The parts of one process, from its settings."""

    def __init__(
        self,
        settings: ServiceSettings | None = None,
        store_settings: StoreSettings | None = None,
        projection_settings: ProjectionSettings | None = None,
        *,
        pool_size: int = 8,
        reads_size: int = 8,
        kafka_principal: str = OPERATOR,
        database_role: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.store_settings = store_settings or get_store_settings()
        # Every Kafka client of the process, the read side's included, is this principal.
        self.kafka = kafka_connection(self.settings, default=kafka_principal)
        reads = projection_settings or get_projection_settings()
        if reads.kafka_principal is None:
            reads = reads.model_copy(update={"kafka_principal": self.kafka.principal})
        self.projection_settings = reads
        if database_role is not None and self.settings.database_service_roles:
            # A service connects as its own role (services/database_roles.py); tools and
            # migrations as the database's owner, given in database_url.
            url = role_url(self.settings, database_role)
            self.store_settings = self.store_settings.model_copy(
                update={"database_url": url(self.store_settings.database_url)}
            )
            replica = reads.read_replica_url
            self.projection_settings = reads.model_copy(
                update={
                    "database_url": url(reads.database_url),
                    "read_replica_url": None if replica is None else url(replica),
                }
            )
        self._pool_size = pool_size
        self._reads_size = reads_size

    @cached_property
    def pool(self) -> ConnectionPool:
        return service_pool(self.store_settings, self._pool_size)

    @cached_property
    def reads(self) -> ConnectionPool:
        return read_pool(self.projection_settings, max_size=self._reads_size)

    @cached_property
    def replica_reads(self) -> ConnectionPool:
        """Reads that may lag the primary (docs/scaling.md): a pool on the read replica when
        ``BACKBONE_READ_REPLICA_URL`` is set, else ``reads``. Nothing writes through it."""
        replica = self.projection_settings.read_replica_url
        if replica is None:
            return self.reads
        on_replica = self.projection_settings.model_copy(update={"database_url": replica})
        return read_pool(on_replica, max_size=self._reads_size)

    @cached_property
    def store(self) -> ClinicalStore:
        """The PostgreSQL-backed clinical store with per-patient encryption."""
        settings = self.store_settings
        master_key = load_master_key(settings.master_key_file)
        with schema_lock(self.pool):
            keys = PostgresKeyStore(self.pool, f"{settings.store_name}_data_keys")
            keyring = Keyring(
                master_key, keys, settings.key_cache_ttl_s, master_file=settings.master_key_file
            )
            id_key, separated = ensure_id_key(settings.id_key_path, master_key, keys.has_keys)
            with self.pool.connection() as conn:
                migrating = may_create(conn)
            env = store_env(settings, create_tables=migrating)
            store = ClinicalStore(env, keyring, id_key, name=settings.store_name)
            store.care_team_grace = timedelta(hours=settings.care_team_grace_hours)
            store.prepare()
        if separated:
            record_id_key_separated(store, id_key)
        return store

    @cached_property
    def topic_ends(self) -> TopicEnds:
        return TopicEnds(self.kafka)

    @cached_property
    def status(self) -> StatusService:
        return StatusService(
            self.pool, self.reads, self.topic_ends, self.settings, self.store_settings
        )

    @cached_property
    def auth(self) -> AuthService:
        store = self.store  # built first: it takes the schema lock itself (not re-entrant)
        with schema_lock(self.pool):
            return AuthService(store, self.pool, self.settings)

    def verifier(self) -> ChainVerifier:
        """Checks the store's hash chains and signs their head, in the database and in the
        witness. Only the relay and ``backbone verify`` ask for it: the signing key is a
        0600 file that the API and the other processes never load."""
        settings = self.store_settings
        key = load_signing_key(settings.checkpoint_key_file)
        witness = Witness(settings.witness_dir, settings.store_name)
        return self.store.chain_verifier(self.pool, key, witness)

    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(self.store, self.pool, self.settings.retention_years)

    def relay(self) -> Relay:
        """The relay of this store to Kafka, with its checkpoint, wake-up and signer, and the
        lock that lets only one relay of the store publish at a time."""
        settings = self.settings
        store = self.store
        name = relay_name(settings, self.store_settings)
        with schema_lock(self.pool):
            checkpoint = Checkpoint(self.pool, name)
        publisher = KafkaPublisher(
            self.kafka,
            f"backbone-{settings.relay_name}",
            settings.relay_flush_timeout_s,
        )
        sign_head, wakeup, leadership = None, None, None
        if store.on_postgres:
            sign_head = self.verifier().sign_head
            url = self.store_settings.database_url
            wakeup = StoreWakeup(url, store.commit_channel)
            instance = f"{socket.gethostname()}:{os.getpid()}"
            leadership = Leadership(url, name, instance, settings.relay_takeover_grace)
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
            leadership=leadership,
            standby_poll_s=settings.relay_standby_poll_s,
        )

    def close(self) -> None:
        """Close what was built (and only that)."""
        built = self.__dict__
        if "topic_ends" in built:
            self.topic_ends.close()
        if "store" in built:
            self.store.close()
        if "replica_reads" in built and built["replica_reads"] is not built.get("reads"):
            self.replica_reads.close()
        if "reads" in built:
            self.reads.close()
        if "pool" in built:
            self.pool.close()


def build_store(settings: StoreSettings | None = None) -> ClinicalStore:
    """A store alone, for tests and one-off tools that need nothing else."""
    return Backbone(store_settings=settings).store
