"""FHIR: ``Patient/{id}/$everything`` with 32 clients, and a bulk ``$export``, each against
the raw read-table queries behind it.

``$everything`` authenticates, checks the care team, records the read, runs one query per
resource type over the read tables and maps each row to its resource. The baseline runs the
same per-type SQL (the kinds' ``source``, filtered by patient) over plain psycopg
connections, one per client, without building resources. The export is timed from kick-off
to the manifest (written NDJSON files); its baseline scans the same SQL for every patient.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.clients import Clients
from bench.measure import Load, hammer, ratio
from bench.progress import Progress
from bench.scenarios.chart_read import WARM_UP
from bench.sizes import Sizes
from bench.stack import BenchStack, load_generator_core
from services.fhir.resources import KINDS

EXPORT_TIMEOUT_S = 1800


def _by_patient(source: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM ({}) AS r WHERE r.patient_id = ANY(%s)").format(sql.SQL(source))


def api_everything(stack: BenchStack, patients: list[Any], clients: int, seconds: float) -> Load:
    pool = Clients(stack.url, stack.token("physician"), clients, stack.tls)
    pick = random.Random(13)

    def read(worker: int, _: int) -> None:
        pool.get(worker).request("GET", f"/fhir/R4/Patient/{pick.choice(patients)}/$everything")

    try:
        with load_generator_core():
            hammer(clients, read, each=WARM_UP)
            return hammer(clients, read, seconds=seconds)
    finally:
        pool.close()


def _connect(stack: BenchStack) -> psycopg.Connection[Any]:
    conn = psycopg.connect(stack.projection_settings.database_url, autocommit=True)
    schema = sql.Identifier(stack.projection_settings.read_schema)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(schema))
    return conn


def raw_everything(stack: BenchStack, patients: list[Any], clients: int, seconds: float) -> Load:
    connections = [_connect(stack) for _ in range(clients)]
    queries = [_by_patient(kind.source) for kind in KINDS.values()]
    pick = random.Random(13)

    def read(worker: int, _: int) -> None:
        patient = [pick.choice(patients)]
        if not sum(len(connections[worker].execute(q, (patient,)).fetchall()) for q in queries):
            raise LookupError("record missing")

    try:
        with load_generator_core():
            hammer(clients, read, each=WARM_UP)
            return hammer(clients, read, seconds=seconds)
    finally:
        for conn in connections:
            conn.close()


def api_export(stack: BenchStack) -> tuple[int, float]:
    """Resources exported and the seconds from kick-off to the manifest."""
    headers = {
        "Authorization": f"Bearer {stack.token('compliance')}",
        "Accept": "application/fhir+json",
        "Prefer": "respond-async",
    }
    with httpx.Client(base_url=stack.url, verify=stack.tls, headers=headers, timeout=60) as http:
        began = time.perf_counter()
        kicked = http.get("/fhir/R4/$export")
        if kicked.status_code != 202:
            raise RuntimeError(f"$export answered {kicked.status_code}")
        status_url = kicked.headers["Content-Location"]
        deadline = began + EXPORT_TIMEOUT_S
        while time.perf_counter() < deadline:
            polled = http.get(status_url)
            if polled.status_code == 200:
                elapsed = time.perf_counter() - began
                exported = sum(int(o["count"]) for o in polled.json()["output"])
                http.delete(status_url)  # its files are not needed
                return exported, elapsed
            if polled.status_code != 202:
                raise RuntimeError(f"export status answered {polled.status_code}")
            time.sleep(0.05)
    raise RuntimeError("the export did not finish")


def raw_export(stack: BenchStack) -> tuple[int, float]:
    """Rows scanned and seconds: the same per-type SQL over every row, fetched in batches."""
    with _connect(stack) as conn:
        began = time.perf_counter()
        rows = 0
        for kind in KINDS.values():
            with conn.transaction(), conn.cursor(name=f"scan_{kind.name.lower()}") as cur:
                cur.execute(sql.SQL(kind.source))
                while batch := cur.fetchmany(1000):
                    rows += len(batch)
        return rows, time.perf_counter() - began


def run(stack: BenchStack, sizes: Sizes, progress: Progress, patients: list[Any]) -> dict[str, Any]:
    task = progress.task("fhir", 4)
    api = api_everything(stack, patients, sizes.chart_clients, sizes.chart_s)
    progress.advance(task)
    raw = raw_everything(stack, patients, sizes.chart_clients, sizes.chart_s)
    progress.advance(task)
    exported, export_s = api_export(stack)
    progress.advance(task)
    scanned, scan_s = raw_export(stack)
    progress.advance(task)
    export_rate, scan_rate = exported / export_s, scanned / scan_s
    return {
        "everything_rps": round(api.per_s, 1),
        "raw_rps": round(raw.per_s, 1),
        "ratio": ratio(api.per_s, raw.per_s),
        "p50_ms": api.p(50),
        "p99_ms": api.p(99),
        "raw_p99_ms": raw.p(99),
        "clients": sizes.chart_clients,
        "patients": len(patients),
        "export_resources": exported,
        "export_per_s": round(export_rate, 1),
        "raw_scan_per_s": round(scan_rate, 1),
        "export_ratio": ratio(export_rate, scan_rate),
        "errors": api.errors + raw.errors,
    }
