"""The relay loop: read the store's notification log after the checkpoint, publish, advance.

The log is the outbox: there is no second write path. The relay never skips an event: a
batch that Kafka does not fully acknowledge is retried (with backoff) from the same
position; an event it cannot decode at all (altered ciphertext, unknown format) stops the
relay with an error rather than being passed over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from eventsourcing.persistence import Notification

from events.domain.contract import spec_of
from events.store.application import ClinicalStore
from events.store.published import partition_key, published_envelope
from services.relay.checkpoint import Checkpoint
from services.relay.publisher import KafkaPublisher, OutgoingMessage, PublishFailed, message_for
from services.relay.wakeup import StoreWakeup

log = logging.getLogger(__name__)


class RelayHalted(Exception):
    """An event cannot be published as it is; a person has to look at it."""


class Relay:
    """Moves events from the store to Kafka, batch by batch, checkpointing after each ack."""

    def __init__(
        self,
        store: ClinicalStore,
        checkpoint: Checkpoint,
        publisher: KafkaPublisher,
        batch_size: int = 500,
        poll_interval_s: float = 0.1,
        max_backoff_s: float = 10.0,
        sign_head: Callable[[], object] | None = None,
        checkpoint_interval_s: float = 300.0,
        wakeup: StoreWakeup | None = None,
    ) -> None:
        self.store = store
        self.checkpoint = checkpoint
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self.position = checkpoint.position()
        # Periodically sign the hash chain's head, so a later rewrite of history shows.
        self.sign_head = sign_head
        self.checkpoint_interval_s = checkpoint_interval_s
        self._next_signature = time.monotonic()
        self.wakeup = wakeup

    def _messages(self, notifications: Sequence[Notification]) -> list[OutgoingMessage]:
        mapper = self.store.clinical_mapper
        try:
            key_ids = {mapper.key_id_of(n) for n in notifications}
            # Fresh keys for every batch, so an erasure made elsewhere is honoured at once.
            self.store.keyring.refresh()
            self.store.keyring.prefetch(key_ids)
        except Exception as exc:
            raise RelayHalted(
                f"batch after position {self.position} cannot be read: {type(exc).__name__}"
            ) from exc
        messages = []
        for notification in notifications:
            try:
                envelope = published_envelope(mapper, notification)
            except Exception as exc:
                # The type only: messages of validation errors can quote clinical values.
                raise RelayHalted(
                    f"event at position {notification.id} cannot be decoded: {type(exc).__name__}"
                ) from exc
            topic = spec_of(envelope["event_type"]).topic.name
            messages.append(message_for(topic, partition_key(envelope), envelope))
        return messages

    def step(self) -> int:
        """Publish the next batch; the number of events published (0 when caught up)."""
        notifications = self.store.recorder.select_notifications(
            start=self.position, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        started = time.monotonic()
        self.publisher.publish(self._messages(notifications))
        elapsed = max(time.monotonic() - started, 1e-6)
        self.position = notifications[-1].id
        self.checkpoint.advance(self.position, len(notifications), len(notifications) / elapsed)
        return len(notifications)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; Kafka outages are waited out, never skipped over."""
        backoff = 0.5
        log.info("relay started", extra={"fields": {"position": self.position}})
        self.checkpoint.report("running")
        while not stop.is_set():
            try:
                published = self.step()
            except PublishFailed as exc:
                log.warning(
                    "kafka unavailable; retrying",
                    extra={
                        "fields": {
                            "position": self.position,
                            "backoff_s": backoff,
                            "error": str(exc),
                        }
                    },
                )
                self.checkpoint.report("kafka_unreachable", str(exc))
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            except RelayHalted as exc:
                self.checkpoint.report("halted", str(exc))
                log.error("relay halted", extra={"fields": {"position": self.position}})
                raise
            if self.sign_head is not None and time.monotonic() >= self._next_signature:
                self.sign_head()
                self._next_signature = time.monotonic() + self.checkpoint_interval_s
            if published:
                backoff = 0.5
                log.debug(
                    "published", extra={"fields": {"count": published, "position": self.position}}
                )
            elif self.wakeup is not None:
                self.wakeup.wait(self.poll_interval_s, stop)
            else:
                stop.wait(self.poll_interval_s)
        self.checkpoint.report("stopped")
        self.publisher.close()
        if self.wakeup is not None:
            self.wakeup.close()
