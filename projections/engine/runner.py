"""The projection runner: one Kafka consumer group per projection, offsets in PostgreSQL.

For each polled batch, in one PostgreSQL transaction: every message is decoded (its sealed
payload opened with keys fetched for the whole batch, ``projections.engine.keyclient``) and
applied once (duplicates by ``event_id`` / position are no-ops), undecodable or unappliable ones
(another store's envelopes among them) are sent to the dead-letter topic with the reason,
and the next offset of each partition is stored with the read-table writes. Dead letters
are confirmed by Kafka before that transaction commits. On assignment the consumer seeks
to the stored offsets; Kafka's own committed offsets are never used. The runner subscribes
to this deployment's topics (``BACKBONE_TOPIC_PREFIX``); offsets are stored under those
Kafka names, marks under the contract's.
"""

from __future__ import annotations

import logging
import threading
import zlib
from contextlib import nullcontext
from typing import Any

import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError
from psycopg_pool import ConnectionPool

from projections.engine.applying import Decoded, Undecodable, apply_once, decode_batch, mark_key
from projections.engine.base import MessageRefused, Projection
from projections.engine.deadletter import DeadLetter
from projections.engine.kafka_clients import kafka_connection
from projections.engine.keyclient import KeyClient, KeyServiceUnavailable, KeyUnknown
from projections.engine.marks import Marks
from projections.engine.state import (
    advance_position,
    clear_halt,
    record_halt,
    store_offset,
    stored_offsets,
)
from projections.settings import ProjectionSettings

log = logging.getLogger(__name__)

# A polled message: the Kafka record and what it decoded to.
Polled = tuple[Any, Decoded]
# Outages are waited out and the batch retried; a message the read model refuses is
# dead-lettered; anything else a handler raises is our bug: the projection halts.
OUTAGES = (psycopg.OperationalError, KafkaError, KeyServiceUnavailable)
MESSAGE_ERRORS = (MessageRefused,)


class ProjectionHalted(Exception):
    """A handler failed for a reason that is not the message's: a person has to look."""


class RetentionGap(Exception):
    """Kafka no longer holds messages this projection has not applied (retention deleted
    them): consuming on would skip them. The remedy is a rebuild from the store."""


def projection_lock_id(projection: str) -> int:
    """The advisory lock a runner's batch and a rebuild's swap both take."""
    return zlib.crc32(f"projection:{projection}".encode())


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner

    def on_partitions_revoked(self, revoked: Any) -> None:
        del revoked

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.runner.seek_to_stored(list(assigned))


class ProjectionRunner:
    """Keeps one projection's read tables up to date from Kafka."""

    def __init__(
        self,
        projection: Projection,
        pool: ConnectionPool,
        settings: ProjectionSettings,
        deadletter: DeadLetter,
        keys: KeyClient | None = None,
    ) -> None:
        self.projection = projection
        self.pool = pool
        self.settings = settings
        self.deadletter = deadletter
        # Opens the sealed payloads (it connects on the first sealed message only).
        self.keys = keys or KeyClient.from_settings(settings)
        self.kafka = kafka_connection(settings)
        self.group_id = f"{settings.consumer_group_prefix}.{settings.read_schema}.{projection.name}"
        self.consumer: KafkaConsumer | None = None
        self.unchecked: set[TopicPartition] = set()

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            **self.kafka.client_kwargs(),
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            # Never reset silently: every position is sought from the stored offsets.
            auto_offset_reset="none",
            max_poll_records=self.settings.projection_max_poll_records,
        )

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        """Position the consumer at the offsets stored with the read tables."""
        if self.consumer is None:
            return
        with self.pool.connection() as conn:
            offsets = stored_offsets(conn.cursor(), self.projection.name)
        for tp in partitions:
            stored = offsets.get((tp.topic, tp.partition))
            if stored is not None:
                self.consumer.seek(tp, stored)
            else:
                self.consumer.seek_to_beginning(tp)
        # Checked against retention by the run loop before anything polled is applied (the
        # rebalance callback cannot ask Kafka: kafka-python runs it inside its own I/O).
        self.unchecked.update(partitions)

    def check_retention(self) -> None:
        """Halt if Kafka no longer holds, for a newly assigned partition, messages from the
        stored offset on: applying what it has would skip what retention deleted."""
        if not self.unchecked or self.consumer is None:
            return
        partitions = sorted(self.unchecked)
        starts = self.consumer.beginning_offsets(partitions)
        with self.pool.connection() as conn:
            offsets = stored_offsets(conn.cursor(), self.projection.name)
        for tp in partitions:
            applied, start = offsets.get((tp.topic, tp.partition), 0), int(starts.get(tp) or 0)
            if applied < start:
                self._halt_on(
                    RetentionGap(
                        f"Kafka holds {tp.topic}:{tp.partition} from offset {start} on; this "
                        f"projection has applied up to {applied}: retention deleted what it "
                        f"did not apply. Rebuild it from the store: backbone rebuild "
                        f"{self.projection.name}"
                    )
                )
        self.unchecked.clear()

    def process(self, batch: dict[TopicPartition, list[Any]]) -> tuple[int, int]:
        """Apply one polled batch atomically; (applied, dead-lettered).

        The batch is first applied in one pipelined go; only if a message fails to apply is
        it rolled back and applied again with a savepoint per message, so that the failing
        one goes to the dead-letter topic and the rest still apply."""
        decoded: list[Polled] = []
        undecodable = 0
        records = [record for records in batch.values() for record in records]
        results = decode_batch(records, self.keys, self.kafka.topics, self.settings.store_name)
        for record, result in zip(records, results, strict=True):
            if isinstance(result, Undecodable):
                self.deadletter.send(record, self.projection.name, str(result))
                undecodable += 1
            else:
                decoded.append((record, result))
        try:
            applied, failed = self._apply(batch, decoded, isolate=False, undecodable=undecodable)
        except MESSAGE_ERRORS:
            applied, failed = self._apply(batch, decoded, isolate=True, undecodable=undecodable)
        for _, result in decoded:
            envelope = result.envelope
            if envelope.erased and envelope.patient_id is not None:
                self.keys.forget(str(envelope.patient_id))  # purged: keep no key of theirs
        return applied, undecodable + failed

    def _apply(
        self,
        batch: dict[TopicPartition, list[Any]],
        decoded: list[Polled],
        *,
        isolate: bool,
        undecodable: int,
    ) -> tuple[int, int]:
        name = self.projection.name
        applied = failed = top = 0
        with self.pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (projection_lock_id(name),))
            marks = Marks(name)
            marks.load(
                cur,
                [mark_key(d.topic, d.envelope) for _, d in decoded],
                [d.envelope.patient_id for _, d in decoded if d.envelope.patient_id is not None],
            )
            with nullcontext() if isolate else conn.pipeline():
                for record, d in decoded:
                    try:
                        with conn.transaction() if isolate else nullcontext():
                            if apply_once(
                                cur, self.projection, marks, d.topic, d.envelope, d.payload
                            ):
                                applied += 1
                        top = max(top, d.envelope.position)
                    except MESSAGE_ERRORS as exc:
                        if not isolate:
                            raise
                        self.deadletter.send(record, name, f"cannot apply: {type(exc).__name__}")
                        failed += 1
            marks.flush(cur)
            for tp, records in batch.items():
                store_offset(cur, name, tp.topic, tp.partition, records[-1].offset + 1)
            advance_position(cur, name, top, applied, undecodable + failed)
            self.deadletter.confirm()
        return applied, failed

    def _halt(self, batch: dict[TopicPartition, list[Any]], exc: Exception) -> None:
        """Record why and where the projection stopped; nothing of the batch is committed."""
        self.deadletter.discard_pending()
        where = ", ".join(f"{tp.topic}:{tp.partition}@{r[0].offset}" for tp, r in batch.items())
        # The type only: messages of database errors can quote clinical values.
        error = f"{type(exc).__name__} applying the batch at {where}"
        with self.pool.connection() as conn:
            record_halt(conn.cursor(), self.projection.name, error)
        log.error(
            "projection halted",
            extra={"fields": {"projection": self.projection.name, "error": error}},
        )

    def _halt_on(self, gap: RetentionGap) -> None:
        with self.pool.connection() as conn:
            record_halt(conn.cursor(), self.projection.name, str(gap))
        log.error(
            "projection halted",
            extra={"fields": {"projection": self.projection.name, "error": str(gap)}},
        )
        raise ProjectionHalted(f"{self.projection.name} halted: {gap}") from gap

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; a failed batch is rewound and retried, never skipped."""
        with self.pool.connection() as conn:
            clear_halt(conn.cursor(), self.projection.name)
        self.consumer = self._new_consumer()
        topics = self.kafka.topics.names(self.projection.topics)
        self.consumer.subscribe(list(topics), listener=_SeekToStored(self))
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    batch = self.consumer.poll(timeout_ms=500)
                except (OffsetOutOfRangeError, NoOffsetForPartitionError):
                    # Retention deleted the next messages while this runner was behind.
                    self.seek_to_stored(list(self.consumer.assignment()))
                    batch = {}
                self.check_retention()
                if not batch:
                    continue
                try:
                    applied, deadlettered = self.process(batch)
                except OUTAGES as exc:
                    self.deadletter.discard_pending()
                    log.warning(
                        "batch failed; rewinding",
                        extra={
                            "fields": {
                                "projection": self.projection.name,
                                "error": type(exc).__name__,
                                "backoff_s": backoff,
                            }
                        },
                    )
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    self.seek_to_stored(list(self.consumer.assignment()))
                    continue
                except Exception as exc:
                    self._halt(batch, exc)
                    # A message's own key missing is named as such; else it is our bug.
                    known = isinstance(exc, KeyUnknown)
                    detail = str(exc) if known else f"{type(exc).__name__} in a handler"
                    raise ProjectionHalted(f"{self.projection.name} halted: {detail}") from exc
                backoff = 0.5
                if deadlettered:
                    log.warning(
                        "dead-lettered messages",
                        extra={
                            "fields": {"projection": self.projection.name, "count": deadlettered}
                        },
                    )
                log.debug(
                    "applied",
                    extra={"fields": {"projection": self.projection.name, "count": applied}},
                )
        finally:
            self.consumer.close()
            self.consumer = None
