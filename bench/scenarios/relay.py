"""Relay: events from the store to Kafka (acks=all) vs a raw producer sending the same bytes.

The relay reads the notification log, decrypts, builds the published envelopes (payloads
sealed under each patient's key, as in production), sends and waits for every
acknowledgement, then checkpoints. The raw producer, with the same producer settings, sends
the already-built (already sealed) messages. Then the relay runs live while commands arrive
at a steady rate, and its lag behind the store head is sampled.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka import KafkaProducer

from bench.measure import paced, percentile, ratio
from bench.population import register_patients
from bench.progress import Progress
from bench.sizes import Sizes
from bench.stack import BenchStack
from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR, Actor
from services.relay.publisher import OutgoingMessage, producer_config
from services.relay.relay import messages_of
from services.synthetic import indexed_vitals


def _raw_publish(stack: BenchStack, messages: list[OutgoingMessage]) -> float:
    """Seconds a raw producer takes to send ``messages`` and get every acknowledgement."""
    settings = stack.settings
    # Over TLS as the in-process relay connects: the comparison includes the same encryption.
    producer = KafkaProducer(
        **producer_config(stack.backbone.kafka, "bench-raw", settings.relay_flush_timeout_s)
    )
    topics = stack.backbone.kafka.topics  # the bench's own topics, as the relay's
    try:
        producer.send(topics.of(messages[0].topic), key=b"warm-up", value=b"{}").get(timeout=30)
        began = time.perf_counter()
        futures = [
            producer.send(topics.of(m.topic), key=m.key, value=m.value, headers=m.headers)
            for m in messages
        ]
        for future in futures:
            future.get(timeout=60)
        return time.perf_counter() - began
    finally:
        producer.close(timeout=10)


def run(stack: BenchStack, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    relay = stack.backbone.relay()
    start, head = relay.position, stack.head()
    task = progress.task("relay", 2 * (head - start))
    began = time.perf_counter()
    while relay.position < head:
        published = relay.step()
        progress.advance(task, published)
    relay_s = time.perf_counter() - began
    relayed = head - start

    messages: list[OutgoingMessage] = []
    for page in stack.store.event_log.pages(start, until=head, page_size=500):
        messages.extend(messages_of(page.events, stack.store.payload_keys))
    raw_s = _raw_publish(stack, messages)
    progress.advance(task, len(messages))

    lag = _lag_under_load(stack, relay, sizes)
    relay_rate, raw_rate = relayed / relay_s, len(messages) / raw_s
    return {
        "events_per_s": round(relay_rate, 1),
        "raw_per_s": round(raw_rate, 1),
        "ratio": ratio(relay_rate, raw_rate),
        "events": relayed,
        **lag,
    }


def _lag_under_load(stack: BenchStack, relay: Any, sizes: Sizes) -> dict[str, Any]:
    """Run the relay live under a steady command load; its lag behind the head, sampled."""
    nurse = CommandContext(actor=Actor(user_id=stack.users["nurse"], role="nurse"))
    patients = register_patients(stack.store, SYSTEM_ACTOR, "relaylag", 16)
    stop, done = threading.Event(), threading.Event()
    samples: list[float] = []
    relay.poll_interval_s = stack.settings.relay_poll_interval_s

    def sample() -> None:
        while not done.is_set():
            samples.append(max(stack.head() - relay.position, 0))
            time.sleep(0.02)

    runner = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    runner.start()
    sampler.start()

    def command(_: int, i: int) -> None:
        stack.store.record_vitals(nurse, indexed_vitals(patients[i % 16], i))

    load = paced(sizes.relay_load_rate, sizes.relay_load_s, command, workers=8)
    deadline = time.monotonic() + 30
    while relay.position < stack.head() and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    stop.set()
    runner.join(timeout=30)
    sampler.join(timeout=5)
    return {
        "lag_offered_per_s": sizes.relay_load_rate,
        "lag_achieved_per_s": round(load.per_s, 1),
        "lag_p99_events": percentile(samples, 99),
        "lag_max_events": max(samples, default=0),
    }
