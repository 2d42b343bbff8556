"""The key service of one test store, served in this process on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from events.application import ClinicalStore
from events.settings import StoreSettings
from services.bootstrap import service_pool
from services.keyservice.server import KeyServer, key_server, serve_in_thread
from services.settings import ServiceSettings


@contextmanager
def serving_keys(
    store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> Iterator[KeyServer]:
    """``backbone keys serve`` for ``store``, in a thread; its port is ``server.port``."""
    pool = service_pool(store_settings, max_size=4)
    server = key_server(store, pool, settings, port=0)
    thread = serve_in_thread(server)
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()
        pool.close()
