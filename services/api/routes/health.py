"""``/healthz``, ``/readyz`` and ``/metrics``.

Readiness asks PostgreSQL and, through the process's one long-lived admin client, Kafka:
it is computed at most once per ``BACKBONE_HEALTH_CACHE_S`` however often these are called
(a caller arriving while it is computed gets the previous answer), so polling them opens
nothing and costs the store and the broker nothing more. ``/metrics`` outside development
needs a token (see ``deps.metrics_reader``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from kafka.errors import KafkaError
from psycopg import Error as DatabaseError

from projections.registry import ALL
from services.api.container import Container
from services.api.deps import metrics_reader
from services.api.examples import HEALTH, METRICS, READY, example
from services.api.guards import Cached
from services.api.observability import PROJECTION_LAG, RELAY_LAG, exposition

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=example(HEALTH))
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


def _readiness(container: Container) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        with container.reads.connection() as conn:
            conn.execute("SELECT 1").fetchone()
        checks["store"] = {"up": True}
    except DatabaseError as exc:
        checks["store"] = {"up": False, "error": type(exc).__name__}
    try:
        lag = container.status.consumer_lag(ALL)
        checks["kafka"] = {"up": True}
        limit = container.settings.ready_max_projection_lag
        checks["projections"] = {
            name: {"lag": value, "up": value <= limit} for name, value in lag.items()
        }
        for name, value in lag.items():
            PROJECTION_LAG.labels(name).set(value)
    except (KafkaError, DatabaseError) as exc:
        checks["kafka"] = {"up": False, "error": type(exc).__name__}
    try:
        state, head = container.status.relay()
        RELAY_LAG.set(max(head - state.position, 0))
        checks["relay"] = {"lag": max(head - state.position, 0), "state": state.state}
    except DatabaseError as exc:
        checks["relay"] = {"up": False, "error": type(exc).__name__}
    return checks


def readiness_cache(container: Container) -> Cached[dict[str, Any]]:
    """The process's readiness checks, shared by every ``/readyz`` and ``/metrics``."""
    return Cached(lambda: _readiness(container), container.settings.health_cache_s)


def _checks(request: Request) -> dict[str, Any]:
    cached: Cached[dict[str, Any]] = request.app.state.readiness
    return cached.get()


@router.get("/readyz", responses=example(READY))
def readyz(request: Request) -> JSONResponse:
    """Ready when the store and Kafka answer and every projection's lag is under the limit."""
    checks = _checks(request)
    ready = (
        checks["store"]["up"]
        and checks["kafka"]["up"]
        and all(p["up"] for p in checks.get("projections", {}).values())
    )
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", responses=METRICS, dependencies=[Depends(metrics_reader)])
def metrics(request: Request) -> Response:
    """Prometheus metrics: request latency per route, relay and projection lag. Outside
    development: an admin or compliance token, or the scrape token."""
    _checks(request)
    return Response(exposition(), media_type="text/plain; version=0.0.4")
