"""HTTP clients for the load generator: one keep-alive connection per worker, made up front.

The standard library's ``http.client`` costs the load generator about a third of what
``httpx`` does per request, which leaves more of the two cores to the servers measured.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The API answered with an error status."""


class Connection:
    """One keep-alive HTTP/1.1 connection with a bearer token; reconnects if dropped."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self._conn.request(method, path, body=payload, headers=self.headers)
            answer = self._conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self._conn.close()
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            raise
        data = answer.read()
        if answer.status >= 400:
            raise HttpError(f"{method} {path.split('/')[1]}: HTTP {answer.status}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self._conn.close()


class Clients:
    """A connection per load worker, built before the clock starts and reused across runs."""

    def __init__(self, url: str, token: str, workers: int) -> None:
        self._connections = [Connection(url, token) for _ in range(workers)]

    def get(self, worker: int) -> Connection:
        return self._connections[worker]

    def close(self) -> None:
        for connection in self._connections:
            connection.close()
