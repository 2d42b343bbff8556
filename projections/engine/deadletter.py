"""The dead-letter topic: messages a projection could not decode or apply, with the reason.

The original bytes travel base64-encoded with their source (topic, partition, offset) so
an operator can fix and replay them. Reasons name fields and error kinds, never values.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kafka import KafkaProducer

from events.domain.topics import DEADLETTER
from projections.engine.kafka_clients import KafkaConnection


class DeadLetter:
    """Sends rejected messages to this deployment's ``clinical.deadletter`` and confirms
    their delivery."""

    def __init__(self, kafka: KafkaConnection, client_id: str) -> None:
        self.topic = kafka.topics.of(DEADLETTER.name)
        self._producer = KafkaProducer(
            **kafka.client_kwargs(), client_id=client_id, acks="all", linger_ms=0
        )
        self._pending: list[Any] = []

    def send(self, record: Any, projection: str, reason: str) -> None:
        body = {
            "projection": projection,
            "reason": reason,
            "source": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
            "original_base64": base64.b64encode(record.value or b"").decode(),
        }
        self._pending.append(
            self._producer.send(
                self.topic,
                key=record.key,
                value=json.dumps(body).encode(),
                headers=[
                    ("reason", reason.encode()[:512]),
                    ("source_topic", record.topic.encode()),
                    ("projection", projection.encode()),
                ],
            )
        )

    def confirm(self, timeout_s: float = 30.0) -> None:
        """Block until every dead letter sent so far is acknowledged (or raise)."""
        if not self._pending:
            return
        self._producer.flush(timeout=timeout_s)
        for future in self._pending:
            future.get(timeout=0)
        self._pending.clear()

    def discard_pending(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        self._producer.close(timeout=5)
