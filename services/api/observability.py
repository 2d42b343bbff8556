"""Prometheus metrics of the API: request latency per route, relay and projection lag."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

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


async def record_latency(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", "unmatched")
    REQUEST_SECONDS.labels(request.method, template, str(response.status_code)).observe(
        time.perf_counter() - started
    )
    return response


def exposition() -> bytes:
    return generate_latest(REGISTRY)
