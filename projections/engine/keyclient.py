"""The subscribers' client of the key service: payload keys over mutual TLS, cached briefly.

Every payload on Kafka is sealed under a per-topic subkey of its patient's data key
(``events.store.kafka_payloads``). A consumer opens it with the key the backbone's key
service (``backbone keys serve``) answers for that topic and patient: the service knows the
caller by its client certificate (common name = principal), answers only for the topics that
principal may read, and audits each fetch. Keys are cached for ``ttl_s`` (60 s by default),
so an erasure reaches every consumer within that bound even before it sees the erasure event;
an erased patient's ``null`` is never cached as a usable key. The patients of one Kafka batch
are fetched in one request per topic.

The projections, the department consumers and ``docs/examples/department_consumer.py`` use
it; it needs only the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from events.store.kafka_payloads import PayloadUnreadable as PayloadUnreadable  # re-exported
from events.store.kafka_payloads import key_ref, open_sealed, shredded
from projections.engine.kafka_clients import kafka_connection

if TYPE_CHECKING:
    from projections.settings import ProjectionSettings

MAX_PER_REQUEST = 2000
_ERASED = object()  # a key the service answered null for: gone for good
_UNKNOWN = object()  # a key the service never had: not an erasure


class KeyServiceUnavailable(Exception):
    """The key service cannot be reached or answered oddly: an outage, to wait out."""


class KeysRefused(Exception):
    """The key service refused this principal the topic's keys: a grant is missing."""


class KeyUnknown(Exception):
    """The key service has no data key for a patient of a message, and none was destroyed:
    not an erasure (a message from another store's deployment on the same cluster, or a key
    store that lost rows). The message is refused (the projections dead-letter it with this
    reason), never read as an erasure that would purge the patient."""


class KeyClient:
    """Fetches, caches and applies payload keys for one principal."""

    def __init__(
        self,
        url: str,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        ttl_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.hostname is None:
            raise ValueError("the key service URL must be https://host:port")
        self.host, self.port = parts.hostname, parts.port or 443
        self.files = (ca_file, cert_file, key_file)
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._context: ssl.SSLContext | None = None
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: ProjectionSettings) -> KeyClient:
        """The client of this process's principal (the one its Kafka clients connect as),
        with the same client certificate."""
        connection = kafka_connection(settings)
        ca, cert, key = connection.ca_file, connection.cert_file, connection.key_file
        if ca is None or cert is None or key is None:
            raise ValueError("the key service needs a CA, a client certificate and its key")
        return cls(settings.key_service_url, ca, cert, key, settings.key_client_cache_ttl_s)

    # -- the cache -------------------------------------------------------------------------
    def _cached(self, topic: str, ref: str) -> object | None:
        with self._lock:
            entry = self._cache.get((topic, ref))
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    def forget(self, patient_id: str) -> None:
        """Drop a patient's cached keys (the consumer has seen their erasure)."""
        with self._lock:
            for cached in [k for k in self._cache if k[1] == patient_id]:
                del self._cache[cached]

    def prefetch(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Fetch the keys the (topic, envelope) pairs need and the cache lacks, one request
        per topic; envelopes in clear or malformed are left for ``open`` to judge."""
        wanted: dict[str, set[str]] = {}
        for topic, envelope in items:
            try:
                ref = key_ref(envelope)
            except PayloadUnreadable:
                continue
            if ref is not None and self._cached(topic, ref) is None:
                wanted.setdefault(topic, set()).add(ref)
        for topic, refs in wanted.items():
            ordered = sorted(refs)
            for start in range(0, len(ordered), MAX_PER_REQUEST):
                self._fetch(topic, ordered[start : start + MAX_PER_REQUEST])

    def open(self, topic: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """The clear envelope: opened with its key, as it is when it was never sealed, or in
        its erased form when the key is gone. ``PayloadUnreadable`` when it fails to open."""
        ref = key_ref(envelope)
        if ref is None:
            return dict(envelope)
        key = self._cached(topic, ref)
        if key is None:
            key = self._fetch(topic, [ref])[ref]
        if key is _ERASED:
            return shredded(envelope)
        if key is _UNKNOWN:
            raise KeyUnknown(
                f"the key service has no data key for this patient of {topic} and none was "
                "destroyed: not an erasure (a message from another store, or lost keys)"
            )
        if not isinstance(key, bytes):
            raise KeyServiceUnavailable("the key service did not answer for a requested key")
        return open_sealed(envelope, key)

    # -- the service -----------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            ca, cert, key = self.files
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(cert), str(key))
            self._context = context
        return self._context

    def _connection(self) -> http.client.HTTPSConnection:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout_s, context=self._ssl()
            )
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            try:
                conn = self._connection()
                conn.request("POST", "/v1/keys", body=body, headers=headers)
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection()
                if attempt == 2:
                    raise KeyServiceUnavailable("the key service closed the connection") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                raise KeyServiceUnavailable(
                    f"cannot reach the key service: {type(exc).__name__}"
                ) from None
        raise AssertionError("unreachable")

    def _fetch(self, topic: str, refs: list[str]) -> dict[str, object]:
        """Ask the service for the refs' keys; cache and return them (erased: ``_ERASED``)."""
        body = json.dumps({"topic": topic, "patient_ids": refs}).encode()
        status, raw = self._post(body)
        if status == 403:
            raise KeysRefused(f"the key service refuses the keys of {topic} to this principal")
        if status != 200:
            raise KeyServiceUnavailable(f"the key service answered {status}")
        try:
            body = json.loads(raw)
            unknown = set(body.get("unknown") or ()) & set(refs)
            keys = body["keys"]
            answers = {ref: keys[ref] for ref in refs if ref not in unknown}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyServiceUnavailable("the key service answered something unexpected") from None
        values = {ref: _ERASED if v is None else _decoded(v) for ref, v in answers.items()}
        values.update(dict.fromkeys(unknown, _UNKNOWN))
        expires = self.clock() + self.ttl_s
        with self._lock:
            if len(self._cache) > 200_000:
                self._cache.clear()
            for ref, value in values.items():
                self._cache[topic, ref] = (expires, value)
        return values

    def close(self) -> None:
        self._drop_connection()


def _decoded(encoded: object) -> bytes:
    if not isinstance(encoded, str):
        raise KeyServiceUnavailable("the key service answered a key that is not base64")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyServiceUnavailable("the key service answered a key that is not base64") from None
