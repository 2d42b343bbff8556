"""The local Kafka broker: jars from Maven Central, KRaft combined mode, our topics.

``infra/kafka/pom.xml`` names the broker; Maven copies it and its dependencies into
``.data/kafka/libs`` once (a stamp of the pom's hash avoids a second download). The
broker runs as a detached JVM with ``infra/kafka/server.properties``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import subprocess
import uuid

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from events.domain.topics import ALL_TOPICS, TopicSpec
from services.local_stack.errors import InfraError
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

    def _write_config(self) -> None:
        s = self.settings
        template = (s.infra_dir / "kafka" / "server.properties").read_text()
        replacements = {
            "log.dirs": str(self.log_dirs),
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{s.kafka_controller_port}",
        }
        for key, value in replacements.items():
            template = re.sub(rf"(?m)^{re.escape(key)}=.*$", f"{key}={value}", template)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(template)

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
        self._write_config()
        if self.running_pid() is not None:
            self.wait_ready()
            return False
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
            bootstrap_servers=self.settings.kafka_bootstrap,
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

    def ensure_topics(self, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
        """Create the missing topics of the contract; the names created now."""
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
