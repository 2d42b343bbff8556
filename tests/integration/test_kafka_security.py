"""Kafka takes TLS with a client certificate only, and each principal may do what it is granted.

The broker here is the test's own (its data under a temporary directory, its own ports, the
shared jars): first started as the earlier, plaintext version ran it, then switched to TLS on
the same storage, as ``backbone infra up`` switches an existing ``.data``.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from events.domain.topics import MEDICATIONS, PATIENTS, RESULTS
from projections.engine.kafka_clients import kafka_connection
from projections.engine.offsets import end_offsets
from services.local_stack.errors import InfraError
from services.local_stack.kafka import LocalKafka
from services.local_stack.processes import free_port
from services.settings import ServiceSettings

pytestmark = pytest.mark.integration

LEGACY_TOPIC = "legacy.notes"
REFUSED = {"bootstrap_timeout_ms": 3000, "request_timeout_ms": 3000}


def _isolated(root: Path) -> dict[str, Any]:
    port, controller = free_port(), free_port()
    home = root / "kafka"
    home.mkdir(parents=True)
    shared = ServiceSettings().kafka_dir / "libs"
    if (shared / ".pom.sha256").exists():
        (home / "libs").symlink_to(shared)  # read only: the stamp matches, nothing is fetched
    return {
        "data_dir": root,
        "tls_dir": root / "tls",
        "kafka_port": port,
        "kafka_controller_port": controller,
        "kafka_bootstrap": f"127.0.0.1:{port}",
        "kafka_heap": "256m",
        # A broker of its own: the documented topic names, not the test session's prefix.
        "topic_prefix": "",
    }


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSettings]:
    """A broker made plaintext with one message, then restarted with TLS and ACLs."""
    fields = _isolated(tmp_path_factory.mktemp("kafka-security"))
    plain = LocalKafka(ServiceSettings(**fields, kafka_security_protocol="PLAINTEXT"))
    plain.start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=fields["kafka_bootstrap"])
        admin.create_topics([NewTopic(LEGACY_TOPIC, 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=fields["kafka_bootstrap"])
        producer.send(LEGACY_TOPIC, b"written before the switch").get(timeout=30)
        producer.close()
    finally:
        plain.stop()
    settings = ServiceSettings(**fields)
    kafka = LocalKafka(settings)
    kafka.start()
    try:
        kafka.ensure_topics()
        kafka.ensure_acls()
        yield settings
    finally:
        kafka.stop()


def _clients(settings: ServiceSettings, name: str) -> dict[str, Any]:
    return kafka_connection(settings, name).client_kwargs()


def _consume(kwargs: dict[str, Any], topic: str, group: str, timeout_s: float = 15) -> list[bytes]:
    consumer = KafkaConsumer(
        topic, **kwargs, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        deadline, values = time.monotonic() + timeout_s, []
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
        consumer.commit()
        return values
    finally:
        consumer.close()


def test_the_switch_to_tls_keeps_what_the_plaintext_broker_stored(
    secure: ServiceSettings,
) -> None:
    # given a broker whose storage was written by the plaintext version (the fixture)
    # when the operator reads it over TLS / then the message is still there
    values = _consume(_clients(secure, "operator"), LEGACY_TOPIC, "operator.legacy")
    assert values == [b"written before the switch"]


def test_the_config_has_no_plaintext_listener_and_only_its_owner_reads_it(
    secure: ServiceSettings,
) -> None:
    config = LocalKafka(secure).config_file
    lines = dict(line.split("=", 1) for line in config.read_text().splitlines() if "=" in line[:60])
    assert "PLAINTEXT" not in lines["listeners"] + lines["listener.security.protocol.map"]
    assert lines["ssl.client.auth"] == "required"
    assert lines["inter.broker.listener.name"] == "SSL"
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["super.users"] == "User:localhost;User:operator"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it holds the broker's key


def test_a_plaintext_client_and_a_client_without_a_certificate_are_refused(
    secure: ServiceSettings,
) -> None:
    # a plaintext client gets a TLS alert for an answer, and kafka-python cannot bootstrap
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(bootstrap_servers=secure.kafka_bootstrap, **REFUSED)
    # a TLS client that trusts the CA but presents no certificate is refused in the handshake
    operator = _clients(secure, "operator")
    anonymous = {k: v for k, v in operator.items() if k not in ("ssl_certfile", "ssl_keyfile")}
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(**anonymous, **REFUSED)
    context = ssl.create_default_context(cafile=operator["ssl_cafile"])
    with (
        socket.create_connection(("127.0.0.1", secure.kafka_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        pytest.raises(ssl.SSLError, match=r"BAD_CERTIFICATE|CERTIFICATE_REQUIRED"),
    ):
        tls.sendall(b"\x00\x00\x00\x00")
        tls.recv(1)


def test_only_the_relay_produces_to_the_clinical_topics(secure: ServiceSettings) -> None:
    relay = KafkaProducer(**_clients(secure, "relay"), max_block_ms=10_000)
    try:
        relay.send(PATIENTS.name, key=b"p1", value=b"{}").get(timeout=15)
    finally:
        relay.close()
    # consumers write the dead-letter topic only; the API writes nothing at all, so its
    # (idempotent) producer is refused even a producer id
    refusals = {
        "projections": "TopicAuthorizationFailed",
        "pharmacy": "TopicAuthorizationFailed",
        "department-example": "TopicAuthorizationFailed",
        "api": "ClusterAuthorizationFailed",
    }
    for name, refusal in refusals.items():
        producer = KafkaProducer(**_clients(secure, name), max_block_ms=10_000)
        try:
            with pytest.raises(KafkaError, match=refusal):
                producer.send(PATIENTS.name, key=b"p1", value=b"{}").get(timeout=15)
        finally:
            producer.close()


def test_a_department_reads_what_it_is_granted_and_nothing_else(
    secure: ServiceSettings,
) -> None:
    # given a prescription event on clinical.medications
    relay = KafkaProducer(**_clients(secure, "relay"), max_block_ms=10_000)
    relay.send(MEDICATIONS.name, key=b"p2", value=b'{"granted": true}').get(timeout=15)
    relay.close()
    department = _clients(secure, "department-example")

    # when department-example reads it in one of its groups / then it gets it
    group = f"department.test.{uuid.uuid4()}"
    assert b'{"granted": true}' in _consume(department, MEDICATIONS.name, group)

    # but clinical.results is not granted: asking for it is an authorization error
    reader = KafkaConsumer(**department)
    try:
        assert not reader.partitions_for_topic(RESULTS.name)
        with pytest.raises(TopicAuthorizationFailedError):
            reader.end_offsets(_partitions(secure, RESULTS.name))
    finally:
        reader.close()
    # and neither is a consumer group outside its prefixes
    with pytest.raises(GroupAuthorizationFailedError):
        _consume(department, MEDICATIONS.name, f"projection.{uuid.uuid4()}", timeout_s=5)


def _partitions(settings: ServiceSettings, topic: str) -> list[TopicPartition]:
    operator = KafkaConsumer(**_clients(settings, "operator"))
    try:
        return [TopicPartition(topic, p) for p in sorted(operator.partitions_for_topic(topic))]
    finally:
        operator.close()


def test_the_api_describes_topic_ends_but_reads_no_message(secure: ServiceSettings) -> None:
    ends = end_offsets(kafka_connection(secure, "api"), {MEDICATIONS.name})
    assert len(ends) == MEDICATIONS.partitions
    with pytest.raises(GroupAuthorizationFailedError):
        _consume(_clients(secure, "api"), MEDICATIONS.name, f"projection.{uuid.uuid4()}", 5)


def test_granting_again_changes_nothing_and_a_stale_grant_is_revoked(
    secure: ServiceSettings,
) -> None:
    kafka = LocalKafka(secure)
    assert kafka.ensure_acls().changed is False
    # given a grant the table does not make (the relay reading results)
    admin = KafkaAdminClient(**_clients(secure, "operator"))
    stale = ACL(
        principal="User:relay",
        host="*",
        operation=ACLOperation.READ,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType.TOPIC, RESULTS.name, ACLResourcePatternType.LITERAL
        ),
    )
    assert not admin.create_acls([stale])["failed"]
    admin.close()
    # when infra up grants again / then it is gone
    changes = kafka.ensure_acls()
    assert (changes.created, changes.deleted) == (0, 1)


def test_a_second_prefixed_deployment_gets_its_own_topics_and_grants_and_goes_alone(
    secure: ServiceSettings,
) -> None:
    # given the documented deployment's grants on this broker
    default = LocalKafka(secure)
    assert default.ensure_acls().changed is False
    # when a second deployment comes up beside it under a prefix
    site_b = LocalKafka(secure.model_copy(update={"topic_prefix": "site-b."}))
    created = site_b.ensure_topics()
    assert sorted(created) == sorted(t.name for t in site_b.connection.topics.all())
    assert site_b.ensure_acls().created > 0
    # then its principals are granted its topics, and the first deployment's grants stay
    relay = KafkaProducer(**_clients(secure, "relay"), max_block_ms=10_000)
    relay.send("site-b.clinical.medications", key=b"p4", value=b'{"site": "b"}').get(timeout=15)
    relay.close()
    department = _clients(secure, "department-example")
    group = f"department.site-b.{uuid.uuid4()}"
    assert b'{"site": "b"}' in _consume(department, "site-b.clinical.medications", group)
    assert b'{"site": "b"}' not in _consume(department, MEDICATIONS.name, f"{group}.default", 5)
    assert default.ensure_acls().changed is False

    # when it is removed / then its topics and grants are gone and the first's remain
    assert sorted(site_b.remove_deployment()) == sorted(created)
    admin = KafkaAdminClient(**_clients(secure, "operator"))
    try:
        assert not {t for t in admin.list_topics() if t.startswith("site-b.")}
        assert not [
            a
            for a in admin.describe_acls(_every_acl())[0]
            if a.resource_pattern.resource_name.startswith("site-b.")
        ]
    finally:
        admin.close()
    assert default.ensure_acls().changed is False
    with pytest.raises(InfraError, match="never the default"):
        default.remove_deployment()


def _every_acl() -> ACLFilter:
    return ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )


def test_infra_up_on_a_broker_running_an_older_config_says_to_restart_it(
    secure: ServiceSettings,
) -> None:
    kafka = LocalKafka(secure)
    current = kafka.config_file.read_text()
    assert kafka.start() is False  # running with the current config: nothing to do
    # given the broker runs with a config of the earlier, plaintext version
    kafka.config_file.write_text(current.replace("listeners=SSL://", "listeners=PLAINTEXT://"))
    try:
        with pytest.raises(InfraError, match="older configuration"):
            kafka.start()
    finally:
        kafka.config_file.write_text(current)
    assert kafka.start() is False


def test_client_config_json_connects_as_its_principal(secure: ServiceSettings) -> None:
    env = {
        **os.environ,
        "BACKBONE_KAFKA_BOOTSTRAP": secure.kafka_bootstrap,
        "BACKBONE_TLS_DIR": str(secure.tls_dir),
    }
    command = [sys.executable, "-m", "services.cli", "kafka", "client-config"]
    shown = subprocess.run(
        [*command, "relay", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)
    assert config.pop("principal") == "relay"
    producer = KafkaProducer(**config, max_block_ms=10_000)
    try:
        producer.send(PATIENTS.name, key=b"p3", value=b"{}").get(timeout=15)
    finally:
        producer.close()

    unknown = subprocess.run(
        [*command, "nobody"], env=env, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2
    assert "no principal 'nobody'" in unknown.stderr
