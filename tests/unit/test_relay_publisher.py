"""The publisher turns every Kafka failure into ``PublishFailed``, even while closing.

kafka-python 3's ``close()`` flushes first and raises ``KafkaTimeoutError`` while messages
are still pending (the broker is down). Before this was handled, that error escaped the
relay's outage handling and ended the relay thread: "the relay never reported Kafka as
unreachable". The stand-in producer behaves as kafka-python does with no broker.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from projections.engine.kafka_clients import KafkaConnection
from services.relay.publisher import KafkaPublisher, PublishFailed, message_for


class _Pending:
    def get(self, timeout: float) -> None:
        raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")


class _ProducerWithoutBroker:
    def __init__(self) -> None:
        self.closed_with: list[float] = []

    def send(self, topic: str, **_: Any) -> _Pending:
        return _Pending()

    def close(self, timeout: float) -> None:
        self.closed_with.append(timeout)
        raise KafkaTimeoutError("Timeout waiting for future")


def test_an_unacknowledged_batch_and_a_failing_close_are_a_failed_batch_not_a_crash() -> None:
    nowhere = KafkaConnection("relay", "127.0.0.1:1", "PLAINTEXT", None, None, None)
    publisher = KafkaPublisher(nowhere, "relay-test", flush_timeout_s=2.0)
    producer = _ProducerWithoutBroker()
    publisher._producer = producer
    message = message_for("clinical.patients", b"p", {"event_type": "x", "schema_version": 1})

    with pytest.raises(PublishFailed, match="did not acknowledge"):
        publisher.publish([message])
    publisher.reset()

    # The close waited as long as pending messages can live, and the producer is gone:
    # the next batch builds a fresh one.
    assert producer.closed_with == [2.0]
    assert publisher._producer is None
    publisher.close()  # nothing left to close: no error either
