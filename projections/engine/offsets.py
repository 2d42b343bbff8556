"""The end offsets of Kafka topics, from one long-lived admin client per process.

Lag is asked for on every ``/readyz``, ``/metrics`` and audit read: a consumer per call
(a group-less client connecting, fetching metadata, then closing) cost a connection each
time. The admin client stays open; partition counts are fixed at topic creation, so they
are looked up once per topic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from projections.engine.kafka_clients import KafkaConnection

Ends = dict[tuple[str, int], int]


class TopicEnds:
    """The next offset of every partition of the topics asked for (``earliest``: the first
    offset Kafka still holds, which retention moves up). Topics are Kafka's names: a caller
    asking about contract topics maps them with ``kafka.topics`` first."""

    def __init__(
        self, kafka: KafkaConnection, request_timeout_ms: int = 5000, earliest: bool = False
    ) -> None:
        self.kafka = kafka
        self.spec = OffsetSpec.EARLIEST if earliest else OffsetSpec.LATEST
        self.request_timeout_ms = request_timeout_ms
        self._admin: KafkaAdminClient | None = None
        self._partitions: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, topics: Iterable[str]) -> Ends:
        with self._lock:
            try:
                return self._ends(sorted(set(topics)))
            except KafkaError:
                self._reset()  # reconnect on the next call, not a half-broken client
                raise

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                **self.kafka.client_kwargs(),
                request_timeout_ms=self.request_timeout_ms,
                client_id="backbone-offsets",
            )
        return self._admin

    def _ends(self, topics: list[str]) -> Ends:
        admin = self._client()
        unknown = [t for t in topics if t not in self._partitions]
        if unknown:
            for described in admin.describe_topics(unknown):
                if described["error_code"] == 0 and described["partitions"]:
                    self._partitions[described["name"]] = len(described["partitions"])
        specs = {
            TopicPartition(topic, n): self.spec
            for topic in topics
            for n in range(self._partitions.get(topic, 0))
        }
        if not specs:
            return {}
        answer = admin.list_partition_offsets(specs)
        return {(tp.topic, tp.partition): int(found.offset) for tp, found in answer.items()}

    def _reset(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            finally:
                self._admin = None

    def close(self) -> None:
        with self._lock:
            self._reset()


def end_offsets(kafka: KafkaConnection, topics: set[str]) -> Ends:
    """The end offsets, for one-off callers (tests, a CLI status) without a process client."""
    ends = TopicEnds(kafka)
    try:
        return ends(topics)
    finally:
        ends.close()


def start_offsets(kafka: KafkaConnection, topics: Iterable[str]) -> Ends:
    """The first offset Kafka still holds of each partition (what retention left)."""
    starts = TopicEnds(kafka, earliest=True)
    try:
        return starts(topics)
    finally:
        starts.close()
