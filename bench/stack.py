"""An isolated backbone for one benchmark run: its own store, read schema, consumer groups,
API port and Kafka topics (``bench<tag>.clinical.*``, a topic prefix of its own, with their
ACLs), with the real relay, projections and API as subprocesses. Dropped at the end, the
topics and their ACLs included: a deployment on the same cluster never sees the bench's
events (and would refuse them anyway: they name the bench's store).
"""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from uuid import UUID

import httpx
import pyotp
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR
from events.settings import StoreSettings
from events.store.keys import create_master_key
from projections.engine.service import start_at_end
from projections.registry import ALL
from projections.settings import ProjectionSettings
from services.bootstrap import Backbone
from services.local_stack.kafka import LocalKafka
from services.local_stack.processes import api_healthy, free_port, port_in_use, wait_until
from services.migration import migrate
from services.settings import ServiceSettings
from services.tls import api_client_context

PASSWORD = secrets.token_urlsafe(18)  # bench users live as long as the run
ROLES = ("nurse", "physician", "compliance")  # compliance: FHIR bulk export
ALL_CPUS = frozenset(range(os.cpu_count() or 1))
# Commands whose ``backbone`` arguments are not their name: "keys" is the key service.
ARGV = {"keys": ("keys", "serve")}


@dataclass
class BenchStack:
    """One isolated store and read schema, the processes serving them, and its users."""

    tmp: Path
    settings: ServiceSettings
    store_settings: StoreSettings
    projection_settings: ProjectionSettings
    backbone: Backbone
    port: int
    hl7_port: int = field(default_factory=free_port)
    key_port: int = field(default_factory=free_port)  # the key service of this store
    users: dict[str, UUID] = field(default_factory=dict)
    totp_secrets: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def store(self) -> ClinicalStore:
        return self.backbone.store

    @property
    def reads(self) -> ConnectionPool:
        return self.backbone.reads

    @property
    def admin(self) -> ConnectionPool:
        return self.backbone.pool

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """Verifies the API's certificate against the CA file, like every client."""
        return api_client_context(self.settings)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BACKBONE_STORE_NAME": self.store_settings.store_name,
            "BACKBONE_TOPIC_PREFIX": self.settings.topic_prefix,
            "BACKBONE_MASTER_KEY_FILE": str(self.store_settings.master_key_file),
            "BACKBONE_READ_SCHEMA": self.projection_settings.read_schema,
            "BACKBONE_CONSUMER_GROUP_PREFIX": self.projection_settings.consumer_group_prefix,
            "BACKBONE_API_PORT": str(self.port),
            "BACKBONE_HL7_PORT": str(self.hl7_port),
            "BACKBONE_KEY_SERVICE_PORT": str(self.key_port),
            "BACKBONE_LOG_LEVEL": "WARNING",
        }

    def username(self, role: str) -> str:
        return f"bench.{self.store_settings.store_name}.{role}"

    def start(self, *commands: str) -> None:
        """Start ``backbone <command>`` processes (keys, relay, project, serve) on this store."""
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)
        for command in commands:
            with (logs / f"{command}.log").open("ab") as log:
                self.processes[command] = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", *ARGV.get(command, (command,))],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # The bench process may be pinned to the load generator's core.
                    preexec_fn=lambda: os.sched_setaffinity(0, ALL_CPUS),
                )
        serving = "serve" in commands
        if serving and not wait_until(lambda: api_healthy(self.url, self.tls), 60, 0.2):
            raise RuntimeError(f"the API did not start; see {logs / 'serve.log'}")
        if "hl7" in commands and not wait_until(lambda: port_in_use(self.hl7_port), 60, 0.2):
            raise RuntimeError(f"the HL7 listener did not start; see {logs / 'hl7.log'}")

    def stop(self, *commands: str) -> None:
        for command in commands or tuple(self.processes):
            process = self.processes.pop(command, None)
            if process is None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def token(self, role: str) -> str:
        answer = httpx.post(
            f"{self.url}/v1/auth/token",
            data={"username": self.username(role), "password": PASSWORD, "otp": self._otp(role)},
            timeout=30,
            verify=self.tls,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def _otp(self, role: str) -> str:
        secret = self.totp_secrets.get(role)
        return pyotp.TOTP(secret).now() if secret else ""

    def head(self) -> int:
        return self.store.event_log.head()

    def wait_caught_up(self, timeout_s: float = 1800) -> float:
        """Wait until the relay published the store's head and every projection consumed
        it; the seconds it took."""
        began = time.monotonic()
        head = self.head()

        def done() -> bool:
            status = self.backbone.status.relay_state()
            if status.position < head:
                return False
            return not any(self.backbone.status.consumer_lag(ALL).values())

        if not wait_until(done, timeout_s, 0.1):
            raise RuntimeError("the relay and projections did not catch up in time")
        return time.monotonic() - began

    def close(self) -> None:
        self.stop()
        LocalKafka(self.settings).remove_deployment()  # the bench's topics and their ACLs
        self.store.close()
        del self.backbone.store  # closed: the drop below must not wait on its connections
        # The store's tables (<store>_events, _chain, _data_keys, ...) and the read schema
        # with its rebuild shadows: one statement lists both kinds.
        with self.admin.connection() as conn:
            leftovers = conn.execute(
                "SELECT 'TABLE', tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename LIKE %s UNION ALL "
                "SELECT 'SCHEMA', nspname FROM pg_namespace WHERE nspname LIKE %s",
                (
                    f"{self.store_settings.store_name}\\_%",
                    f"{self.projection_settings.read_schema}%",
                ),
            ).fetchall()
            for kind, name in leftovers:
                conn.execute(
                    sql.SQL("DROP {} IF EXISTS {} CASCADE").format(
                        sql.SQL(kind), sql.Identifier(name)
                    )
                )
        self.backbone.close()


@contextmanager
def bench_stack(tmp: Path) -> Iterator[BenchStack]:
    """A fresh isolated backbone (no processes running yet); dropped on the way out."""
    tag = uuid.uuid4().hex[:8]
    key_file = tmp / "master.key"
    create_master_key(key_file)
    store_settings = StoreSettings(master_key_file=key_file, store_name=f"bench{tag}")
    topics = f"bench{tag}."  # the bench's own topics, created here and deleted at the end
    projection_settings = ProjectionSettings(
        read_schema=f"bench{tag}",
        store_name=store_settings.store_name,
        # Under "projection.": the group prefix the consumer principals are granted.
        consumer_group_prefix=f"projection.bench{tag}",
        topic_prefix=topics,
    )
    settings = ServiceSettings(topic_prefix=topics)
    kafka = LocalKafka(settings)
    try:
        kafka.ensure_topics()
        kafka.ensure_acls()
        backbone = Backbone(settings, store_settings, projection_settings, reads_size=40)
        start_at_end(backbone.reads, projection_settings, ALL, backbone.topic_ends)
    except BaseException:
        kafka.remove_deployment()
        raise
    migrate(backbone)  # the processes started later connect as their own database roles
    stack = BenchStack(tmp, settings, store_settings, projection_settings, backbone, free_port())
    try:
        for role in ROLES:
            created = backbone.auth.create_user(
                CommandContext(actor=SYSTEM_ACTOR),
                stack.username(role),
                f"Bench {role}",
                role,
                PASSWORD,
            )
            stack.users[role] = created.id
            if created.totp_secret is not None:  # compliance always needs a one-time code
                stack.totp_secrets[role] = created.totp_secret
        yield stack
    finally:
        stack.close()


@contextmanager
def load_generator_core() -> Iterator[None]:
    """Pin the threads started inside the block to the last core, leaving the others to
    the servers (API, relay, projections, PostgreSQL, Kafka); undone on the way out."""
    if len(ALL_CPUS) < 2:
        yield
        return
    os.sched_setaffinity(0, {max(ALL_CPUS)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, ALL_CPUS)
