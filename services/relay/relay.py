"""The relay loop: read the store's notification log after the checkpoint, publish, advance.

The log is the outbox: there is no second write path. The relay never skips an event: a
batch that Kafka does not fully acknowledge is retried (with backoff) from the same
position; an event it cannot decode at all (altered ciphertext, unknown format) stops the
relay with an error rather than being passed over. Payloads go out sealed under their
patient's key (``events.store.kafka_payloads``); the envelope stays clear for routing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from events.application import ClinicalStore
from events.store.log import LoggedEvent, LogUnreadable
from events.store.payload_keys import PayloadKeys
from services.relay.checkpoint import Checkpoint
from services.relay.publisher import KafkaPublisher, OutgoingMessage, PublishFailed, message_for
from services.relay.wakeup import StoreWakeup

log = logging.getLogger(__name__)


class RelayHalted(Exception):
    """An event cannot be published as it is; a person has to look at it."""


def messages_of(events: Sequence[LoggedEvent], keys: PayloadKeys) -> list[OutgoingMessage]:
    """The Kafka messages of stored events: their envelope, payload sealed, keyed by patient."""
    return [
        message_for(logged.topic, logged.partition_key.encode(), envelope)
        for logged, envelope in zip(events, keys.published(events), strict=True)
    ]


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

    def step(self) -> int:
        """Publish the next batch; the number of events published (0 when caught up)."""
        try:
            # Fresh keys for every batch, so an erasure made elsewhere is honoured at once.
            page = self.store.event_log.after(self.position, self.batch_size, fresh_keys=True)
        except LogUnreadable as exc:
            raise RelayHalted(str(exc)) from exc
        if not page.read:
            return 0
        started = time.monotonic()
        self.publisher.publish(messages_of(page.events, self.store.payload_keys))
        elapsed = max(time.monotonic() - started, 1e-6)
        self.position = page.last_position
        self.checkpoint.advance(self.position, page.read, page.read / elapsed)
        return page.read

    @staticmethod
    def _sign_head(sign_head: Callable[[], object]) -> None:
        """Sign the head into the database and the witness; a witness that cannot be
        written (full or unmounted disk) is reported and tried again next interval, while
        events keep flowing."""
        try:
            sign_head()
        except OSError as exc:
            log.error("could not witness the chain's head", extra={"fields": {"error": str(exc)}})

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
                self.publisher.reset()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            except RelayHalted as exc:
                self.checkpoint.report("halted", str(exc))
                log.error("relay halted", extra={"fields": {"position": self.position}})
                raise
            if self.sign_head is not None and time.monotonic() >= self._next_signature:
                self._sign_head(self.sign_head)
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
