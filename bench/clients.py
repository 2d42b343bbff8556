"""HTTP clients for the load generator: one keep-alive connection per worker thread."""

from __future__ import annotations

import threading

import httpx


class Clients:
    """A bearer-authenticated ``httpx.Client`` per thread, all closed together."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                base_url=self.url,
                timeout=30,
                headers={"Authorization": f"Bearer {self.token}"},
            )
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._all:
                client.close()
            self._all.clear()
