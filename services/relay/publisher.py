"""Publishing a batch of envelopes to Kafka, all acknowledged or an error.

The producer is idempotent (kafka-python 3 supports it and enables it by default) with
``acks=all``: retries cannot reorder or duplicate messages within a partition, even with
up to five requests in flight per connection. A batch is done only when every message
in it was acknowledged; otherwise ``PublishFailed``, and the caller resets the producer.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from projections.engine.kafka_clients import KafkaConnection

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """Kafka did not acknowledge the whole batch (unreachable, timed out, refused)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One envelope addressed to a contract topic (``clinical.patients``; the publisher
    sends it to this deployment's Kafka topic of that name) and a partition key."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def message_for(topic: str, key: bytes, envelope: dict[str, Any]) -> OutgoingMessage:
    return OutgoingMessage(
        topic=topic,
        key=key,
        value=json.dumps(envelope, separators=(",", ":")).encode(),
        headers=[
            ("event_type", str(envelope["event_type"]).encode()),
            ("schema_version", str(envelope["schema_version"]).encode()),
        ],
    )


def producer_config(
    kafka: KafkaConnection, client_id: str, flush_timeout_s: float
) -> dict[str, Any]:
    """The relay's producer settings (the benchmark's raw producer uses the same)."""
    return {
        **kafka.client_kwargs(),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "request_timeout_ms": int(flush_timeout_s * 1000) - 1000,
        "delivery_timeout_ms": int(flush_timeout_s * 1000),
        "max_block_ms": int(flush_timeout_s * 1000),
        "reconnect_backoff_max_ms": 2_000,
    }


class KafkaPublisher:
    """A lazily built idempotent producer that publishes whole batches to this deployment's
    topics (``kafka.topics``: the prefix before each contract topic)."""

    def __init__(self, kafka: KafkaConnection, client_id: str, flush_timeout_s: float) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self.flush_timeout_s = flush_timeout_s
        self._producer: KafkaProducer | None = None

    def _ensure(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    **producer_config(self.kafka, self.client_id, self.flush_timeout_s)
                )
            except KafkaError as exc:
                raise PublishFailed(f"cannot connect to Kafka: {type(exc).__name__}") from exc
        return self._producer

    def publish(self, messages: list[OutgoingMessage]) -> None:
        producer, topics = self._ensure(), self.kafka.topics
        # One deadline for the whole batch: kafka-python's flush(timeout) waits that long
        # per partition batch, which turns an outage into minutes of silence.
        deadline = time.monotonic() + self.flush_timeout_s
        try:
            futures = [
                producer.send(topics.of(m.topic), key=m.key, value=m.value, headers=m.headers)
                for m in messages
            ]
            for future in futures:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except KafkaError as exc:
            raise PublishFailed(
                f"Kafka did not acknowledge the batch: {type(exc).__name__}"
            ) from exc

    def reset(self) -> None:
        """Drop the producer after a failed batch (the caller reports the outage first, as
        this waits for pending messages to expire); the next batch builds a new one."""
        self._close(self.flush_timeout_s)

    def close(self) -> None:
        self._close(10)

    def _close(self, timeout_s: float) -> None:
        # kafka-python's close() flushes first and raises KafkaTimeoutError when messages
        # are still pending (the broker is down): that must not escape as anything but a
        # failed batch, or the relay's outage handling never runs. Pending messages expire
        # after delivery_timeout_ms (= flush_timeout_s), so this wait is bounded.
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout_s)
        except KafkaError as exc:
            log.warning(
                "kafka producer closed with messages unacknowledged",
                extra={"fields": {"error": type(exc).__name__}},
            )
