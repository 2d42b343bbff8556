"""Prometheus metrics of the API: request latency per route, relay and projection lag."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "backbone_http_request_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELAY_LAG = Gauge("backbone_relay_lag_events", "Store head minus relay position", registry=REGISTRY)
PROJECTION_LAG = Gauge(
    "backbone_projection_lag_messages",
    "Kafka messages not yet applied",
    ["projection"],
    registry=REGISTRY,
)


class LatencyMiddleware:
    """Records each HTTP request's latency by route template (plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_recording_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], template, str(status[0])).observe(
                time.perf_counter() - started
            )


def exposition() -> bytes:
    return generate_latest(REGISTRY)
