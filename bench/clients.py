"""HTTPS clients for the load generator: one keep-alive connection per worker, made up front.

The standard library's ``http.client`` costs the load generator about a third of what
``httpx`` does per request, which leaves more of the two cores to the servers measured. The
connections verify the API against the CA, like every client of the API (the handshake
happens once per connection, during the warm-up).
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The API answered with an error status."""


class Connection:
    """One keep-alive HTTP/1.1 connection (HTTPS for an https URL, verified with ``tls``)
    with a bearer token; reconnects if dropped."""

    def __init__(self, url: str, token: str, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.tls = tls
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=30, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self._conn.request(method, path, body=payload, headers=self.headers)
            answer = self._conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self._conn.close()
            self._conn = self._connect()
            raise
        data = answer.read()
        if answer.status >= 400:
            raise HttpError(f"{method} {path.split('/')[1]}: HTTP {answer.status}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self._conn.close()


class Clients:
    """A connection per load worker, built before the clock starts and reused across runs."""

    def __init__(
        self, url: str, token: str, workers: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self._connections = [Connection(url, token, tls) for _ in range(workers)]

    def get(self, worker: int) -> Connection:
        return self._connections[worker]

    def close(self) -> None:
        for connection in self._connections:
            connection.close()
