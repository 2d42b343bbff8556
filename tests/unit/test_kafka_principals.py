"""Kafka's grants and connection settings, checked without a broker.

The ACLs ``backbone infra up`` grants come from ``services/principals.py``; every process's
Kafka clients are built by ``projections/engine/kafka_clients.py`` from the same layout of
certificate files that ``backbone certs init`` writes.
"""

from __future__ import annotations

from pathlib import Path

from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType

from events.domain.topics import DEADLETTER, PATIENTS, RESULTS
from projections.engine.kafka_clients import kafka_connection
from projections.registry import ALL
from projections.settings import ProjectionSettings
from services.departments.lab_routing import lab_routing
from services.departments.pharmacy import PROJECTION as PHARMACY
from services.local_stack.certificates import Authority
from services.local_stack.kafka_acls import wanted_acls
from services.local_stack.kafka_config import PRINCIPAL_RULES, broker_properties, render
from services.principals import BY_NAME, CLINICAL_TOPICS
from services.settings import ServiceSettings


def _grants(operation: ACLOperation, resource: ResourceType, name: str) -> set[str]:
    return {
        acl.principal
        for acl in wanted_acls()
        if acl.operation == operation
        and acl.resource_pattern.resource_type == resource
        and acl.resource_pattern.resource_name == name
    }


def test_only_the_relay_writes_the_clinical_topics_and_consumers_write_dead_letters() -> None:
    for topic in CLINICAL_TOPICS:
        assert _grants(ACLOperation.WRITE, ResourceType.TOPIC, topic) == {"User:relay"}
    writers = _grants(ACLOperation.WRITE, ResourceType.TOPIC, DEADLETTER.name)
    assert writers == {
        "User:projections",
        "User:pharmacy",
        "User:lab-routing",
        "User:department-example",
    }
    # nobody but the operator (a super user) reads dead letters
    assert _grants(ACLOperation.READ, ResourceType.TOPIC, DEADLETTER.name) == set()


def test_the_api_only_describes_and_a_department_reads_only_its_topics() -> None:
    api = [a for a in wanted_acls() if a.principal == "User:api"]
    assert api and {a.operation for a in api} == {ACLOperation.DESCRIBE}
    assert "User:department-example" in _grants(
        ACLOperation.READ, ResourceType.TOPIC, PATIENTS.name
    )
    assert "User:department-example" not in _grants(
        ACLOperation.READ, ResourceType.TOPIC, RESULTS.name
    )
    groups = [
        a.resource_pattern
        for a in wanted_acls()
        if a.resource_pattern.resource_type == ResourceType.GROUP
    ]
    assert {g.pattern_type for g in groups} == {ACLResourcePatternType.PREFIXED}


def test_every_consumer_process_is_granted_the_topics_it_consumes() -> None:
    consumes = {
        "projections": {t for p in ALL for t in p.topics},
        "pharmacy": set(PHARMACY.topics),
        "lab-routing": set(lab_routing(frozenset()).topics),
    }
    for name, topics in consumes.items():
        assert topics <= set(BY_NAME[name].reads), name
        assert "projection." in BY_NAME[name].group_prefixes  # its runner's groups


def test_clients_use_the_files_certs_init_writes_for_their_principal(tmp_path: Path) -> None:
    settings = ProjectionSettings(tls_dir=tmp_path, kafka_bootstrap="127.0.0.1:1")
    authority = Authority(tmp_path)
    own = kafka_connection(settings, default="pharmacy")
    assert own.principal == "pharmacy"
    assert (own.ca_file, own.cert_file, own.key_file) == (
        authority.ca.cert,
        authority.client("pharmacy").cert,
        authority.client("pharmacy").key,
    )
    kwargs = own.client_kwargs()
    assert kwargs["security_protocol"] == "SSL" and kwargs["ssl_check_hostname"] is True
    assert "ssl.certificate.location=" in own.kcat()


def test_an_operators_own_files_are_the_process_principals_only(tmp_path: Path) -> None:
    mine = tmp_path / "mine.pem"
    settings = ProjectionSettings(
        tls_dir=tmp_path, kafka_principal="relay", kafka_cert_file=mine, kafka_key_file=mine
    )
    assert kafka_connection(settings, default="operator").cert_file == mine
    other = kafka_connection(settings, "api")
    assert other.cert_file == Authority(tmp_path).client("api").cert


def test_plaintext_needs_no_files_and_is_refused_outside_development() -> None:
    settings = ProjectionSettings(kafka_security_protocol="PLAINTEXT")
    assert set(kafka_connection(settings).client_kwargs()) == {
        "bootstrap_servers",
        "security_protocol",
    }
    try:
        ServiceSettings(
            environment="production",
            postgres_password="x" * 20,
            database_url="postgresql://b:secret@db/b",
            kafka_security_protocol="PLAINTEXT",
        )
    except ValueError as exc:
        assert "plaintext is refused" in str(exc)
    else:
        raise AssertionError("plaintext Kafka accepted outside development")


def test_the_broker_config_escapes_the_pem_and_keeps_template_lines() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nABC\n-----END PRIVATE KEY-----\n"
    text = render("node.id=1\nlisteners=old\n", {"listeners": "SSL://x", "ssl.keystore.key": pem})
    assert "listeners=SSL://x" in text and "listeners=old" not in text
    assert "ssl.keystore.key=-----BEGIN PRIVATE KEY-----\\nABC\\n" in text
    assert "\\" not in PRINCIPAL_RULES  # .properties would read a backslash as an escape


def test_a_plaintext_broker_has_no_authorizer(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    values = broker_properties(settings, tmp_path / "logs")
    assert values["listeners"].startswith("PLAINTEXT://")
    assert "authorizer.class.name" not in values
