"""``backbone serve``: the clinical API with uvicorn."""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from services.settings import get_settings


def serve() -> None:
    """Serve the API (one process; the store is synchronous, handlers run in a thread pool)."""
    settings = get_settings()
    uvicorn.run(
        create_app(),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )
