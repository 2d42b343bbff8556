"""An independent Kafka consumer of the contract topics, as a downstream department runs one."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from events.domain.topics import ALL_TOPICS, DEADLETTER
from projections.engine.kafka_clients import KafkaClientSettings, kafka_connection
from projections.engine.keyclient import KeyClient


class ContractReader:
    """Reads every area topic from 'now' on and keeps the envelopes of chosen patients."""

    def __init__(self, settings: KafkaClientSettings, keys: KeyClient | None = None) -> None:
        # Given a key client, payloads are opened (else envelopes are kept as sealed on Kafka).
        self.key_client = keys
        connection = kafka_connection(settings)
        self.names = connection.topics  # this test session's topics
        self.consumer = KafkaConsumer(
            **connection.client_kwargs(),  # the operator: it reads every topic
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=500,
        )
        partitions = [
            TopicPartition(name, p)
            for name in self.names.names(t.name for t in ALL_TOPICS if t is not DEADLETTER)
            for p in sorted(self.consumer.partitions_for_topic(name) or ())
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before any test event
            self.consumer.position(partition)
        self.envelopes: list[dict[str, Any]] = []
        self.topics: list[str] = []  # the contract's names
        self.headers: list[dict[str, bytes]] = []
        self.keys: list[bytes] = []

    def poll_until(
        self,
        done: Callable[[ContractReader], bool],
        timeout_s: float,
        accept: Callable[[dict[str, Any]], bool],
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in self.consumer.poll(timeout_ms=500).values():
                for message in batch:
                    envelope = json.loads(message.value)
                    if self.key_client is not None:
                        envelope = self.key_client.open(message.topic, envelope)
                    if accept(envelope):
                        self.envelopes.append(envelope)
                        self.topics.append(self.names.logical(message.topic) or "")
                        self.headers.append(dict(message.headers))
                        self.keys.append(message.key)
            if done(self):
                return True
        return done(self)

    def event_ids(self) -> set[str]:
        return {e["event_id"] for e in self.envelopes}

    def first_seen_positions(self) -> dict[tuple[str, str], list[int]]:
        """Positions in arrival order per (patient, topic), duplicates dropped.

        Kafka orders a key's messages within one topic; across topics a consumer orders
        a patient's events by ``position``.
        """
        seen: set[str] = set()
        by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
        for envelope, topic in zip(self.envelopes, self.topics, strict=True):
            if envelope["event_id"] in seen:
                continue
            seen.add(envelope["event_id"])
            by_stream[(envelope["patient_id"], topic)].append(envelope["position"])
        return by_stream

    def duplicate_positions(self) -> list[int]:
        counts: dict[int, int] = defaultdict(int)
        for envelope in self.envelopes:
            counts[envelope["position"]] += 1
        return sorted(p for p, n in counts.items() if n > 1)

    def close(self) -> None:
        self.consumer.close()
