"""A department's consumer of the clinical-backbone event contract, in plain kafka-python.

Copy this file and replace ``handle`` with your own durable write. It shows the rules of
``docs/subscribing.md``:

- offsets are committed by hand, only after the batch's work is done (auto-commit off);
- messages are filtered on the key (patient id) and the ``event_type`` header before any
  JSON is parsed;
- delivery is at-least-once, so events are deduplicated on ``event_id``;
- an erased envelope (``"erased": true``, ``"payload": null``) means: purge everything held
  about that patient, and keep no later event of theirs;
- payloads travel sealed under the patient's key (``payload_encrypted``): they are opened
  with the project's key client (``projections.engine.keyclient``, the one import from the
  project), which fetches the keys of a batch from the backbone's key service with the same
  client certificate; a key answered ``null`` is an erased patient's: purge, as above;
- an envelope of another store (``store`` is not our backbone's ``--store``; one without
  ``store`` is ours only below envelope version 3) is refused before any key is asked for;
- a message we cannot read (not JSON, not an envelope, a schema version we do not know,
  a sealed payload that fails authentication, another store's) goes to
  ``clinical.deadletter`` with the reason; it is never skipped silently.

Each handled event is printed as one JSON line on stdout::

    {"event_id": ..., "event_type": ..., "patient_id": ..., "position": ..., "topic": ...}
    {"purge": "<patient id>"}

The broker takes TLS only and knows a client by its certificate: connect as your
department's principal with ``--client-config FILE`` (the JSON that ``backbone kafka
client-config NAME --json`` prints) or with ``--ca-file``, ``--cert-file`` and ``--key-file``.
Your principal may read only the topics and use only the consumer groups it is granted
(``department-example``: ``clinical.patients`` and ``clinical.medications``, groups
``department.*`` and ``pharmacy.*``, writes to ``clinical.deadletter``). Topics are the
contract's names; a deployment with a ``BACKBONE_TOPIC_PREFIX`` has them behind it: give
the same ``--topic-prefix``.

Example::

    backbone kafka client-config department-example --json > department-example.json
    python department_consumer.py --client-config department-example.json \\
        --group department.verification --from-beginning --idle-timeout-s 10
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from projections.engine.keyclient import KeyClient, PayloadUnreadable

DEADLETTER_TOPIC = "clinical.deadletter"
STORE_NAMED_SINCE = 3  # the envelope version from which every envelope names its store

# The event types this department handles and the payload schema versions it understands
# (docs/events/README.md). Other event types on our topics are skipped by their header,
# unparsed. A handled type with a version not listed here is dead-lettered: the relay
# upcasts old versions, so a version we do not know is a newer contract we must adopt.
HANDLED: dict[str, frozenset[int]] = {
    "patient.registered": frozenset({1}),
    "patient.demographics_updated": frozenset({1}),
    "allergy.recorded": frozenset({1}),
    "allergy.refuted": frozenset({1}),
    "patient.erased": frozenset({1}),
    "medication.prescribed": frozenset({1}),
    "medication.changed": frozenset({1}),
    "medication.discontinued": frozenset({1}),
    "medication.administered": frozenset({1, 2}),
    "pharmacy.verified": frozenset({1}),
    "pharmacy.rejected": frozenset({1}),
}

REQUIRED_FIELDS = ("event_id", "event_type", "schema_version", "position", "payload", "erased")


class Rejected(Exception):
    """The message is not something we can handle; the reason names no clinical values."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Consume clinical-backbone events.")
    add = parser.add_argument
    add("--client-config", help="JSON of `backbone kafka client-config NAME --json`")
    add("--bootstrap", help="Kafka bootstrap servers")
    add("--security-protocol", choices=("SSL", "PLAINTEXT"))
    add("--ca-file", help="the CA the broker's certificate is from")
    add("--cert-file", help="your principal's client certificate")
    add("--key-file", help="its private key")
    add("--key-service", default="https://127.0.0.1:8444", help="the backbone's key service")
    add("--group", required=True, help="consumer group, <department>.<purpose>")
    add("--store", default="clinical", help="the backbone's BACKBONE_STORE_NAME")
    add("--topic-prefix", default="", help="its BACKBONE_TOPIC_PREFIX, if any")
    add(
        "--topics",
        default="clinical.medications,clinical.patients",
        help="comma-separated contract topics (those your department is granted)",
    )
    add("--max-messages", type=int, help="stop after handling N events")
    add("--idle-timeout-s", type=float, help="stop after N seconds without any message")
    add(
        "--from-beginning",
        action="store_true",
        help="a group without committed offsets starts at the oldest retained message "
        "(default: only new messages); committed offsets always win",
    )
    add("--patients", help="comma-separated patient ids to keep (default: all)")
    return parser.parse_args(argv)


# The connection keywords of kafka-python that a --client-config file may carry.
TLS_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
CONNECTION_KEYS = ("bootstrap_servers", "security_protocol", *TLS_FILES, "ssl_check_hostname")


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """kafka-python's connection keywords: the --client-config file, then the options over it."""
    options: dict[str, Any] = {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "SSL"}
    if args.client_config:
        with open(args.client_config, encoding="utf-8") as config:
            loaded = json.load(config)
        options.update({k: v for k, v in loaded.items() if k in CONNECTION_KEYS})
    given = {
        "bootstrap_servers": args.bootstrap,
        "security_protocol": args.security_protocol,
        "ssl_cafile": args.ca_file,
        "ssl_certfile": args.cert_file,
        "ssl_keyfile": args.key_file,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if options["security_protocol"] == "SSL":
        lacking = [k for k in TLS_FILES if not options.get(k)]
        if lacking:
            raise SystemExit(
                "the broker takes TLS with a client certificate: give --client-config FILE "
                f"or --ca-file, --cert-file and --key-file (missing: {', '.join(lacking)})"
            )
    return options


def split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None


def emit(line: dict[str, Any]) -> None:
    """Our 'durable write' in this example: one JSON line on stdout."""
    print(json.dumps(line), flush=True)  # noqa: T201


def decode(raw: bytes | None, event_type: str, store: str) -> dict[str, Any]:
    """Our store's envelope as a dict, checked just enough to handle it (or ``Rejected``)."""
    try:
        envelope = json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected("not JSON") from None
    if not isinstance(envelope, dict):
        raise Rejected("not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in envelope]
    if missing:
        raise Rejected(f"missing fields: {', '.join(missing)}")
    if envelope["event_type"] != event_type:
        raise Rejected("event_type header and envelope disagree")
    if (refused := foreign(envelope, store)) is not None:
        raise Rejected(refused)
    return envelope


def foreign(envelope: dict[str, Any], store: str) -> str | None:
    """Why an envelope is not our store's, or None when it is."""
    origin, version = envelope.get("store"), envelope.get("envelope_version", 1)
    if origin is None and not (isinstance(version, int) and version < STORE_NAMED_SINCE):
        return f"envelope version {str(version)[:8]} names no store"
    if origin is not None and origin != store:
        return f"from store {str(origin)[:64]}, this deployment is store {store}"
    return None


def opened(keys: KeyClient, topic: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with its payload opened (erased when the patient's key is gone)."""
    try:
        clear = keys.open(topic, envelope)
    except PayloadUnreadable as exc:
        raise Rejected(str(exc)) from None
    if clear["payload"] is None and clear["erased"] is not True:
        raise Rejected("payload null but not marked erased")
    return clear


def parsed(raw: bytes | None) -> dict[str, Any] | None:
    """The message as a JSON object, or None (``decode`` says why, later)."""
    try:
        value = json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def key_client(args: argparse.Namespace, kafka: dict[str, Any]) -> KeyClient:
    """The key service's client, with the certificate we connect to Kafka with."""
    files = [kafka.get(k) for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")]
    if not all(files):
        raise SystemExit("the key service needs your CA, certificate and key: see --client-config")
    ca, cert, key = (Path(str(f)) for f in files)
    return KeyClient(args.key_service, ca, cert, key)


class DepartmentConsumer:
    """Reads the contract topics for one consumer group and handles each event once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.group: str = args.group
        self.max_messages: int | None = args.max_messages
        self.idle_timeout_s: float | None = args.idle_timeout_s
        self.patients: set[str] | None = set(split(args.patients)) or None
        self.store: str = args.store
        self.prefix: str = args.topic_prefix  # before every contract topic's name
        topics = [self.prefix + topic for topic in split(args.topics)]
        kafka = connection(args)
        self.consumer = KafkaConsumer(
            *topics,
            **kafka,
            group_id=args.group,
            client_id=args.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if args.from_beginning else "latest",
        )
        self.deadletters = KafkaProducer(**kafka, client_id=f"{args.group}.deadletter", acks="all")
        # A topic our principal is not granted looks empty to kafka-python (it only logs the
        # authorization error): refuse to start rather than wait for messages that never come.
        for topic in topics:
            if not self.consumer.partitions_for_topic(topic):
                self.consumer.close()
                self.deadletters.close(timeout=5)
                raise SystemExit(f"{topic}: not granted to this principal, or no such topic")
        # Payload keys, cached for a minute; the key service being down stops us (the batch
        # is not committed, so it comes again), it never makes us skip a message.
        self.keys = key_client(args, kafka)
        # A real department keeps these with its data, written in the same transaction as
        # the data itself (or a per-(topic, key) high-water mark of `position`); in memory
        # they are forgotten on restart, and redelivered events would be handled again.
        self.seen_event_ids: set[str] = set()
        self.erased_patients: set[str] = set()
        self.pending_deadletters: list[Any] = []
        self.handled = 0
        self.counts = {"skipped": 0, "duplicates": 0, "deadlettered": 0}

    def run(self) -> int:
        """Poll, handle and commit until max messages or the idle timeout; exit status 0."""
        last_message = time.monotonic()
        try:
            while not self._done():
                batch = self.consumer.poll(timeout_ms=500)
                if not batch:
                    idle = time.monotonic() - last_message
                    if self.idle_timeout_s is not None and idle >= self.idle_timeout_s:
                        break
                    continue
                last_message = time.monotonic()
                self._handle_batch(batch)
        finally:
            self.deadletters.close(timeout=5)
            self.consumer.close(autocommit=False)
        print(  # noqa: T201
            json.dumps({"handled": self.handled, **self.counts}), file=sys.stderr
        )
        return 0

    def _done(self) -> bool:
        return self.max_messages is not None and self.handled >= self.max_messages

    def _handle_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Handle a polled batch, then commit the offsets after the last handled message."""
        next_offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        # The keys of the batch's messages we handle, in one request per topic.
        self.keys.prefetch(
            (record.topic, envelope)
            for records in batch.values()
            for record in records
            if self._wanted(record)
            and (envelope := parsed(record.value)) is not None
            and foreign(envelope, self.store) is None
        )
        for partition, records in batch.items():
            for record in records:
                if self._done():
                    break
                self._handle(record)
                next_offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
        # Dead letters must be acknowledged before we move past their source offsets:
        # a failed send raises here, and the uncommitted batch is redelivered on restart.
        self.deadletters.flush(timeout=30)
        for future in self.pending_deadletters:
            future.get(timeout=0)
        self.pending_deadletters.clear()
        if next_offsets:
            self.consumer.commit(next_offsets)

    def _wanted(self, record: Any) -> bool:
        """One of our patients, of an event type we handle (or without the header, which
        is dead-lettered): decided on key and headers, before any JSON is parsed."""
        key = record.key.decode() if record.key else None
        if self.patients is not None and key not in self.patients:
            return False
        event_type = header(record.headers, "event_type")
        return event_type is None or event_type in HANDLED

    def _handle(self, record: Any) -> None:
        if not self._wanted(record):
            self.counts["skipped"] += 1  # not our patient or not our business: not parsed
            return
        event_type = header(record.headers, "event_type")
        try:
            if event_type is None:
                raise Rejected("no event_type header")
            version = header(record.headers, "schema_version")
            if version is None or not version.isdigit():
                raise Rejected("no schema_version header")
            if int(version) not in HANDLED[event_type]:
                raise Rejected(f"unknown schema_version {version} of {event_type}")
            envelope = opened(self.keys, record.topic, decode(record.value, event_type, self.store))
        except Rejected as rejected:
            self._deadletter(record, str(rejected))
            return
        event_id = str(envelope["event_id"])
        if event_id in self.seen_event_ids:
            self.counts["duplicates"] += 1
            return
        patient_id = envelope.get("patient_id")
        if envelope["erased"] is True:
            self._purge(patient_id)
        elif patient_id in self.erased_patients:
            self.counts["skipped"] += 1  # published before the erasure: keep nothing
        else:
            emit(
                {
                    "event_id": event_id,
                    "event_type": event_type,
                    "patient_id": patient_id,
                    "position": envelope["position"],
                    "topic": record.topic.removeprefix(self.prefix),
                }
            )
        self.seen_event_ids.add(event_id)
        self.handled += 1

    def _purge(self, patient_id: str | None) -> None:
        """Delete everything held about the patient; remember them so nothing comes back.

        ``patient.erased`` itself keeps its payload: the legal basis of the erasure.
        """
        if patient_id is None:
            return
        self.erased_patients.add(patient_id)
        self.keys.forget(patient_id)
        emit({"purge": patient_id})

    def _deadletter(self, record: Any, reason: str) -> None:
        body = {
            "projection": self.group,
            "reason": reason,
            "source": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
            "original_base64": base64.b64encode(record.value or b"").decode(),
        }
        future = self.deadletters.send(
            self.prefix + DEADLETTER_TOPIC,
            key=record.key,
            value=json.dumps(body).encode(),
            headers=[
                ("reason", reason.encode()[:512]),
                ("source_topic", record.topic.encode()),
                ("projection", self.group.encode()),
            ],
        )
        self.pending_deadletters.append(future)
        self.counts["deadlettered"] += 1


def main(argv: Sequence[str] | None = None) -> int:
    return DepartmentConsumer(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
