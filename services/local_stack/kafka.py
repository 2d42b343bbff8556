"""The local Kafka broker: jars from Maven Central, KRaft combined mode, our topics and ACLs.

``infra/kafka/pom.xml`` names the broker; Maven copies it and its dependencies into
``.data/kafka/libs`` once (a stamp of the pom's hash avoids a second download). The
broker runs as a detached JVM with ``infra/kafka/server.properties``, TLS only, written on
every start (``kafka_config.py``); ``backbone infra up`` then grants the principals' ACLs
(``kafka_acls.py``). Its own admin client connects as ``operator``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from events.domain.topics import TopicSpec
from projections.engine.kafka_clients import OPERATOR, KafkaConnection, kafka_connection
from services.local_stack import kafka_acls
from services.local_stack.certificates import ensure_certificates
from services.local_stack.errors import InfraError
from services.local_stack.kafka_config import BrokerTls, broker_properties, render, write_private
from services.local_stack.postgres import Health
from services.local_stack.processes import (
    pid_alive,
    port_in_use,
    read_pid,
    run,
    tail,
    terminate,
    wait_until,
)
from services.principals import PRINCIPALS
from services.settings import ServiceSettings

log = logging.getLogger(__name__)


def new_cluster_id() -> str:
    """A random KRaft cluster id. Like Kafka's own ``Uuid.randomUuid`` it never starts with
    "-", which the storage tool would read as an option (a 1-in-64 failure otherwise)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalKafka:
    """Controls the local broker: fetch jars, format storage once, start, stop, check."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.home = settings.kafka_dir
        self.libs = self.home / "libs"
        self.log_dirs = self.home / "logs"
        self.config_file = self.home / "server.properties"
        self.pid_file = self.home / "broker.pid"
        self.broker_log = self.home / "broker.log"
        self.pom = settings.infra_dir / "kafka" / "pom.xml"
        # Administration (health, topics, ACLs) is the operator's, whoever runs the command.
        self.connection: KafkaConnection = kafka_connection(settings, OPERATOR)

    # -- prerequisites ---------------------------------------------------------------------
    @staticmethod
    def java() -> str:
        java = shutil.which("java")
        if java is None:
            raise InfraError(
                "Java is not installed (no `java` on PATH); Kafka needs a JDK 17+. "
                "Install one (apt-get install openjdk-17-jre-headless) and retry."
            )
        return java

    def ensure_jars(self) -> bool:
        """Copy the broker jars from Maven Central unless the cached copy matches the pom."""
        stamp = self.libs / ".pom.sha256"
        digest = hashlib.sha256(self.pom.read_bytes()).hexdigest()
        if (
            stamp.exists()
            and stamp.read_text().strip() == digest
            and any(self.libs.glob("kafka_2.13-*.jar"))
        ):
            return False
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError(
                "Maven is not installed (no `mvn` on PATH); it fetches the Kafka jars "
                "from Maven Central. Install it (apt-get install maven) or run `make setup`."
            )
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.mkdir(parents=True)
        run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(self.pom),
                "dependency:copy-dependencies",
                f"-Dlibs.dir={self.libs}",
            ],
            "Fetching the Kafka jars with Maven",
        )
        stamp.write_text(digest)
        return True

    def _classpath(self) -> str:
        return str(self.libs / "*")

    def ensure_tls(self) -> list[str]:
        """Make the local CA's missing certificates (none with an operator's own PKI)."""
        if (
            self.settings.kafka_security_protocol != "SSL"
            or not BrokerTls.of(self.settings).local_ca
        ):
            return []
        return ensure_certificates(self.settings.tls_dir, [p.name for p in PRINCIPALS])

    def config_text(self) -> str:
        """``server.properties`` as the template and the settings make it now."""
        template = (self.settings.infra_dir / "kafka" / "server.properties").read_text()
        return render(template, broker_properties(self.settings, self.log_dirs))

    def write_config(self, text: str | None = None) -> None:
        """Write ``server.properties`` (0600) from the template and the settings."""
        self.home.mkdir(parents=True, exist_ok=True)
        write_private(self.config_file, text if text is not None else self.config_text())

    def _java_cmd(self, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        cmd = [self.java()]
        if heap:
            cmd += [f"-Xms{heap}", f"-Xmx{heap}"]
        cmd += [
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.settings.infra_dir / 'kafka' / 'log4j2.yaml'}",
            "-cp",
            self._classpath(),
            main_class,
            *args,
        ]
        return cmd

    def ensure_storage(self) -> bool:
        """Format the KRaft storage once; True when it was formatted now."""
        meta = self.log_dirs / "meta.properties"
        if meta.exists():
            return False
        if self.log_dirs.exists() and any(self.log_dirs.iterdir()):
            raise InfraError(
                f"{self.log_dirs} holds Kafka data but no meta.properties: a previous broker's "
                f"storage is corrupt. Move it away or delete it (rm -rf {self.log_dirs}) and "
                "run `backbone infra up` again."
            )
        cluster_id = new_cluster_id()
        run(
            self._java_cmd(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
                "--standalone",
            ),
            "Formatting Kafka storage",
        )
        return True

    # -- lifecycle -------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        if pid is not None and pid_alive(pid):
            return pid
        return None

    def start(self) -> bool:
        """Start the broker unless it runs; True when it was started now."""
        self.java()
        self.ensure_jars()
        self.ensure_tls()
        config = self.config_text()
        if self.running_pid() is not None:
            # A broker started with other settings (the plaintext version, other certificates)
            # would never answer this one's clients: say so now rather than time out.
            if self.config_file.exists() and self.config_file.read_text() != config:
                raise InfraError(
                    "Kafka runs with an older configuration (e.g. plaintext, before TLS): "
                    "run `backbone infra down`, then `backbone infra up` to restart it with "
                    "the current one; its data stays."
                )
            self.wait_ready()
            return False
        self.write_config(config)
        for port in (self.settings.kafka_port, self.settings.kafka_controller_port):
            if port_in_use(port):
                raise InfraError(
                    f"Port {port} is taken by another process, so Kafka cannot start. "
                    "Stop it or set BACKBONE_KAFKA_PORT / BACKBONE_KAFKA_CONTROLLER_PORT "
                    "(and BACKBONE_KAFKA_BOOTSTRAP)."
                )
        self.ensure_storage()
        with self.broker_log.open("ab") as out:
            proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(self.config_file), heap=self.settings.kafka_heap),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        self.wait_ready(proc)
        return True

    def wait_ready(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        def ready() -> bool:
            if proc is not None and proc.poll() is not None:
                raise InfraError(
                    f"The Kafka broker exited with code {proc.returncode} while starting. "
                    f"Last lines of {self.broker_log}:\n{tail(self.broker_log)}"
                )
            return self.answers()

        if not wait_until(ready, self.settings.kafka_start_timeout_s, 0.5):
            raise InfraError(
                f"Kafka did not answer a metadata request within "
                f"{self.settings.kafka_start_timeout_s:.0f}s. Last lines of {self.broker_log}:\n"
                f"{tail(self.broker_log)}"
            )

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        terminate(pid, grace_s=30.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    # -- health and topics -----------------------------------------------------------------
    def _admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(
            **self.connection.client_kwargs(),
            request_timeout_ms=3000,
            client_id="backbone-infra",
        )

    def answers(self) -> bool:
        """True when the broker answers a metadata request."""
        if not port_in_use(self.settings.kafka_port):
            return False
        try:
            admin = self._admin()
        except KafkaError:
            return False
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except KafkaError:
            return False
        finally:
            admin.close()

    def health(self) -> Health:
        up = self.answers()
        return Health(
            "kafka",
            self.settings.kafka_bootstrap,
            up,
            "answers metadata requests" if up else "no answer",
        )

    def ensure_topics(self, topics: tuple[TopicSpec, ...] | None = None) -> list[str]:
        """Create the missing topics (by default the contract's, under this deployment's
        prefix, ``BACKBONE_TOPIC_PREFIX``); the names created now."""
        topics = self.connection.topics.all() if topics is None else topics
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            missing = [t for t in topics if t.name not in existing]
            created: list[str] = []
            for spec in missing:
                try:
                    admin.create_topics(
                        [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs())]
                    )
                    created.append(spec.name)
                except TopicAlreadyExistsError:
                    continue
            return created
        finally:
            admin.close()

    def ensure_acls(self) -> kafka_acls.AclChanges:
        """Grant the principals' ACLs on this deployment's topics (idempotent); nothing to
        grant without TLS."""
        if not self.connection.tls:
            return kafka_acls.AclChanges(0, 0)
        admin = self._admin()
        try:
            return kafka_acls.grant(admin, topics=self.connection.topics)
        finally:
            admin.close()

    def remove_deployment(self) -> list[str]:
        """Delete this (prefixed) deployment's topics and their ACLs: what a test session or
        a bench run created; the topics deleted. The unprefixed deployment is never removed."""
        names = self.connection.topics
        if not names.prefix:
            raise InfraError("only a prefixed deployment's topics are removed, never the default's")
        admin = self._admin()
        try:
            if self.connection.tls:
                kafka_acls.revoke(admin, names)
            ours = {t.name for t in names.all()}
            existing = sorted(ours & set(admin.list_topics()))
            if existing:
                admin.delete_topics(existing, timeout_ms=30_000)
            return existing
        finally:
            admin.close()
