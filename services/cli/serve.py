"""``backbone serve``: the clinical API with uvicorn, over HTTPS unless told otherwise."""

from __future__ import annotations

from functools import partial
from typing import Any

import uvicorn

from services.api.app import create_app
from services.api.container import build_container
from services.settings import ServiceSettings, get_settings
from services.tls import server_context


def tls_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's TLS options: the API's certificate and key (checked up front, so a missing
    file stops the process with a message), none when BACKBONE_API_TLS=false."""
    if not settings.api_tls:
        return {}
    cert, key = settings.api_certificate
    server_context(cert, key)  # refuses missing or unreadable files before binding
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def serve() -> None:
    """Serve the API (one process; the store is synchronous, handlers run in a thread pool)."""
    settings = get_settings()
    uvicorn.run(
        create_app(partial(build_container, database_role="api")),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.api_shutdown_grace_s,
        **tls_options(settings),
    )
