"""Chart read: ``GET /v1/patients/{id}/chart`` with 32 clients vs the raw read-table query.

The API request authenticates the token, checks the care team in the store, reads the chart
in one query and appends the audit event (``chart.viewed``). The baseline runs the same
chart query on the same read tables over plain psycopg connections, one per client.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg
from psycopg import sql

from bench.clients import Clients
from bench.measure import Load, hammer, ratio
from bench.population import populate
from bench.progress import Progress
from bench.sizes import Sizes
from bench.stack import BenchStack, load_generator_core
from projections.chart import fetch_chart

WARM_UP = 5  # requests per client before measuring: connections and pools are open by then


def api_reads(stack: BenchStack, patients: list[Any], clients: int, seconds: float) -> Load:
    pool = Clients(stack.url, stack.token("physician"), clients, stack.tls)
    pick = random.Random(11)

    def read(worker: int, _: int) -> None:
        pool.get(worker).request("GET", f"/v1/patients/{pick.choice(patients)}/chart")

    try:
        with load_generator_core():
            hammer(clients, read, each=WARM_UP)
            return hammer(clients, read, seconds=seconds)
    finally:
        pool.close()


def raw_reads(stack: BenchStack, patients: list[Any], clients: int, seconds: float) -> Load:
    schema = sql.Identifier(stack.projection_settings.read_schema)
    connections = []
    for _ in range(clients):
        conn = psycopg.connect(stack.projection_settings.database_url, autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}, public").format(schema))
        connections.append(conn)
    pick = random.Random(11)

    def read(worker: int, _: int) -> None:
        if fetch_chart(connections[worker], pick.choice(patients)) is None:
            raise LookupError("chart missing")

    try:
        with load_generator_core():
            hammer(clients, read, each=WARM_UP)
            return hammer(clients, read, seconds=seconds)
    finally:
        for conn in connections:
            conn.close()


def population(stack: BenchStack, sizes: Sizes, progress: Progress) -> list[Any]:
    """The patients the read scenarios (chart, FHIR) pick from."""
    return populate(stack, sizes.chart_patients, "chart", progress)


def run(stack: BenchStack, sizes: Sizes, patients: list[Any]) -> dict[str, Any]:
    api = api_reads(stack, patients, sizes.chart_clients, sizes.chart_s)
    raw = raw_reads(stack, patients, sizes.chart_clients, sizes.chart_s)
    return {
        "rps": round(api.per_s, 1),
        "raw_rps": round(raw.per_s, 1),
        "ratio": ratio(api.per_s, raw.per_s),
        "p50_ms": api.p(50),
        "p99_ms": api.p(99),
        "raw_p50_ms": raw.p(50),
        "raw_p99_ms": raw.p(99),
        "clients": sizes.chart_clients,
        "patients": len(patients),
        "errors": api.errors + raw.errors,
    }
