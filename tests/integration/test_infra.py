"""The local infrastructure as a user drives it: real Kafka and PostgreSQL on this machine."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from events.domain.topics import ALL_TOPICS
from projections.engine.kafka_clients import kafka_connection
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.cli import backbone

pytestmark = pytest.mark.integration


def test_a_message_goes_round_trip_through_the_real_broker_with_acks_all(
    stack: LocalStack, settings: ServiceSettings
) -> None:
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    kafka = kafka_connection(settings).client_kwargs()  # the operator, a super user
    admin = KafkaAdminClient(**kafka)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(**kafka, acks="all")
    sent = [f"message-{i}".encode() for i in range(10)]
    for value in sent:
        producer.send(topic, key=b"patient-1", value=value)
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        **kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    received = []
    for message in consumer:
        received.append(message.value)
        if len(received) == len(sent):
            break
    consumer.close()
    admin = KafkaAdminClient(**kafka)
    admin.delete_topics([topic])  # the shared cluster keeps no topic of a test
    admin.close()
    assert received == sent


def test_postgresql_answers_queries_and_keeps_what_it_was_given(
    stack: LocalStack, settings: ServiceSettings
) -> None:
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("CREATE TEMP TABLE roundtrip (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO roundtrip VALUES (1, 'hello')")
        row = conn.execute("SELECT note FROM roundtrip WHERE id = 1").fetchone()
        server_version = conn.info.server_version
    assert row == ("hello",)
    assert server_version >= 150000


def test_every_contract_topic_exists_with_its_partitions(
    stack: LocalStack, settings: ServiceSettings
) -> None:
    # (under this session's prefix: its own deployment on the shared cluster)
    assert settings.topic_prefix.startswith("test-")
    consumer = KafkaConsumer(**kafka_connection(settings).client_kwargs())
    try:
        for contract, spec in zip(ALL_TOPICS, settings.topic_names.all(), strict=True):
            assert spec.name == settings.topic_prefix + contract.name
            partitions = consumer.partitions_for_topic(spec.name)
            assert partitions is not None, spec.name
            assert len(partitions) == contract.partitions
    finally:
        consumer.close()


def test_infra_up_twice_in_a_row_is_a_no_op(stack: LocalStack) -> None:
    first = backbone("infra", "up")
    second = backbone("infra", "up")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "already up" in second.stdout
    assert stack.up().changed is False


def test_status_reports_a_stopped_broker_as_down(stack: LocalStack) -> None:
    healthy = backbone("infra", "status", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    try:
        assert stack.kafka.stop() is True
        status = backbone("infra", "status", "--json")
        assert status.returncode == 1
        assert '"name": "kafka"' in status.stdout
        kafka_line = status.stdout.split('"name": "kafka"', 1)[1]
        assert '"up": false' in kafka_line
    finally:
        stack.up()
    assert stack.kafka.answers()
