"""The relay loop: read the store's notification log after the checkpoint, publish, advance.

The log is the outbox: there is no second write path. The relay never skips an event: a
batch that Kafka does not fully acknowledge is retried (with backoff) from the same
position; an event it cannot decode at all (altered ciphertext, unknown format) stops the
relay with an error rather than being passed over. Payloads go out sealed under their
patient's key (``events.store.kafka_payloads``); the envelope stays clear for routing.

Two relays may run on one store: only the holder of the relay lock publishes, the other
stands by (``services.relay.leadership``). PostgreSQL out of reach (the log, the checkpoint
or the lock) is waited out with backoff like Kafka, reported as ``database_unreachable``
where the database still answers and in a log line; the relay resumes by itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from events.application import ClinicalStore
from events.store.log import UNREACHABLE, LoggedEvent, LogUnreadable
from events.store.payload_keys import PayloadKeys
from services.relay.checkpoint import Checkpoint
from services.relay.leadership import Leadership, LeadershipLost
from services.relay.publisher import KafkaPublisher, OutgoingMessage, PublishFailed, message_for
from services.relay.wakeup import StoreWakeup

log = logging.getLogger(__name__)
# PostgreSQL cannot be reached (down, restarting, the session terminated): waited out.
DATABASE_OUTAGES: tuple[type[Exception], ...] = UNREACHABLE


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
        leadership: Leadership | None = None,
        standby_poll_s: float = 1.0,
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
        # Without leadership (one relay by construction, the bench) it always leads.
        self.leadership = leadership
        self.standby_poll_s = standby_poll_s
        self.leads = leadership is None
        self._next_check = 0.0
        self._standing_by = False
        self._outage_since: float | None = None

    def step(self) -> int:
        """Publish the next batch; the number of events published (0 when caught up).

        Run by ``run`` as the leader, it first asks whether its session still holds the
        relay lock (``LeadershipLost`` if not), after reading and right before sending."""
        try:
            # Fresh keys for every batch, so an erasure made elsewhere is honoured at once.
            page = self.store.event_log.after(self.position, self.batch_size, fresh_keys=True)
        except LogUnreadable as exc:
            raise RelayHalted(str(exc)) from exc
        checking = page.read or time.monotonic() >= self._next_check
        if self.leadership is not None and self.leads and checking:
            self.leadership.verify()
            self._next_check = time.monotonic() + self.standby_poll_s
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

    def _take_lead(self, stop: threading.Event) -> bool:
        """Lead if the relay lock can be had (after the takeover grace); else stand by."""
        if self.leads or self.leadership is None:
            return True
        if not self.leadership.acquire():
            if not self._standing_by:
                log.info("another relay is active; standing by")
                self._standing_by = True
            stop.wait(self.standby_poll_s)
            return False
        grace = self.leadership.grace_left_s()
        if grace > 0:
            log.info(
                "relay lock taken; waiting out the takeover grace",
                extra={"fields": {"grace_s": round(grace, 2)}},
            )
            if stop.wait(grace):
                return False
        self.leadership.verify()
        self.leadership.mark_others_gone()
        self.position = self.checkpoint.position()
        self.leads, self._standing_by = True, False
        self.checkpoint.report("running")
        log.info("relay active", extra={"fields": {"position": self.position}})
        return True

    def _step_down(self, why: str) -> None:
        """Stop publishing at once: another relay may lead already. The checkpoint's row is
        the leader's to write; this process's row says ``standby``."""
        self.leads = False
        log.warning(
            "relay lock lost; standing by",
            extra={"fields": {"position": self.position, "error": why}},
        )
        self.publisher.reset()
        if self.leadership is not None:
            self.leadership.report("standby")

    def _report(self, state: str, error: str | None = None) -> None:
        """The outage in the leader's status row, if the database answers at all."""
        if not self.leads:
            return
        with contextlib.suppress(*DATABASE_OUTAGES):
            self.checkpoint.report(state, error)

    def _kafka_unreachable(self, exc: PublishFailed, backoff: float) -> None:
        log.warning(
            "kafka unavailable; retrying",
            extra={"fields": {"position": self.position, "backoff_s": backoff, "error": str(exc)}},
        )
        self._report("kafka_unreachable", str(exc))
        self.publisher.reset()

    def _database_unreachable(self, exc: Exception, backoff: float) -> None:
        # The error's type only: a database error's message can quote the values it saw.
        error = f"PostgreSQL unreachable: {type(exc).__name__}"
        if self._outage_since is None:
            self._outage_since = time.monotonic()
        log.warning(
            "database unreachable; retrying",
            extra={"fields": {"position": self.position, "backoff_s": backoff, "error": error}},
        )
        self._report("database_unreachable", error)
        if self.leadership is not None:
            self.leadership.report("database_unreachable")

    def _database_back(self) -> None:
        if self._outage_since is None:
            return
        outage_s = round(time.monotonic() - self._outage_since, 1)
        self._outage_since = None
        log.info(
            "database reachable again",
            extra={"fields": {"position": self.position, "outage_s": outage_s}},
        )
        self._report("running")

    def _round(self, stop: threading.Event) -> int | None:
        """One turn of the loop: None when standing by, else the events published."""
        if not self._take_lead(stop):
            return None
        published = self.step()
        self._database_back()
        if self.sign_head is not None and time.monotonic() >= self._next_signature:
            self._sign_head(self.sign_head)
            self._next_signature = time.monotonic() + self.checkpoint_interval_s
        return published

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; outages of Kafka and PostgreSQL are waited out,
        never skipped over; while another relay leads, stand by."""
        backoff = 0.5
        log.info("relay started", extra={"fields": {"position": self.position}})
        if self.leads:
            self.checkpoint.report("running")
        while not stop.is_set():
            try:
                published = self._round(stop)
            except LeadershipLost as exc:
                self._step_down(str(exc))
                continue
            except PublishFailed as exc:
                self._kafka_unreachable(exc, backoff)
            except DATABASE_OUTAGES as exc:
                self._database_unreachable(exc, backoff)
            except RelayHalted as exc:
                self._report("halted", str(exc))
                log.error("relay halted", extra={"fields": {"position": self.position}})
                self._stop()
                raise
            else:
                if published:
                    backoff = 0.5
                    log.debug(
                        "published",
                        extra={"fields": {"count": published, "position": self.position}},
                    )
                elif published == 0:
                    self._idle(stop)
                continue
            stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
        self._report("stopped")
        self._stop()

    def _idle(self, stop: threading.Event) -> None:
        if self.wakeup is not None:
            self.wakeup.wait(self.poll_interval_s, stop)
        else:
            stop.wait(self.poll_interval_s)

    def _stop(self) -> None:
        """Let a standby take over without waiting: this row says ``stopped``, then the lock
        goes; the producer and the listening connection close."""
        if self.leadership is not None:
            self.leadership.report("stopped")
            self.leadership.release()
            self.leadership.close()
        self.publisher.close()
        if self.wakeup is not None:
            self.wakeup.close()
