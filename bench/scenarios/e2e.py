"""End-to-end latency: from an HTTP write's response to the event showing in the chart.

A paced (open-loop) load of vital-sign writes goes to the API; an observer polls the chart
projection's per-patient marks every 2 ms and timestamps when each write's position is
applied. The relay wakes on PostgreSQL NOTIFY; the projections poll Kafka with
``fetch_min_bytes=1``.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from bench.clients import Clients
from bench.measure import hammer, paced, percentile
from bench.population import populate
from bench.progress import Progress
from bench.sizes import Sizes
from bench.stack import BenchStack, load_generator_core
from events.domain.contract import spec_of
from projections.chart import CHART_PROJECTIONS
from projections.registry import ALL
from services.synthetic import http_body, indexed_vitals

PATIENTS = 64
WORKERS = 16
VITALS_TOPIC = spec_of("vitals.recorded").topic.name
CHART_VITALS = next(p.name for p in ALL if p.name in CHART_PROJECTIONS and VITALS_TOPIC in p.topics)


class Observer:
    """Watches the chart projection's marks; when each written position became visible."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.pending: dict[int, tuple[str, float]] = {}
        self.latencies_ms: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def written(self, patient: UUID, position: int, answered_at: float) -> None:
        with self.lock:
            self.pending[position] = (str(patient), answered_at)

    def _watch(self) -> None:
        with self.stack.reads.connection() as conn:
            conn.autocommit = True
            while not self.done.is_set():
                with self.lock:
                    keys = list({key for key, _ in self.pending.values()})
                if keys:
                    rows = conn.execute(
                        "SELECT key, position FROM projection_marks WHERE projection = %s "
                        "AND topic = %s AND key = ANY(%s)",
                        (CHART_VITALS, VITALS_TOPIC, keys),
                    ).fetchall()
                    now = time.perf_counter()
                    marks = {key: int(position) for key, position in rows}
                    with self.lock:
                        for position, (key, answered) in list(self.pending.items()):
                            if marks.get(key, 0) >= position:
                                self.latencies_ms.append((now - answered) * 1000)
                                del self.pending[position]
                time.sleep(0.002)

    def drain(self, timeout_s: float = 30) -> int:
        """Wait for the outstanding writes to show; how many never did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.01)
        self.done.set()
        self.thread.join(timeout=5)
        return len(self.pending)


def run(stack: BenchStack, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    patients = populate(stack, PATIENTS, "e2e", progress)
    clients = Clients(stack.url, stack.token("nurse"), WORKERS, stack.tls)

    def read(worker: int, i: int) -> None:
        clients.get(worker).request("GET", f"/v1/patients/{patients[i]}/chart")

    with load_generator_core():
        warm_up = hammer(WORKERS, read, each=4)  # opens the connections the runs will use
    if warm_up.errors:
        raise RuntimeError("the API answers the warm-up with errors")
    task = progress.task("e2e", int(sum(sizes.e2e_rates) * sizes.e2e_s))
    by_rate = []
    try:
        for rate in sizes.e2e_rates:
            observer = Observer(stack)
            observer.thread.start()

            def write(worker: int, i: int, observer: Observer = observer) -> None:
                patient = patients[i % PATIENTS]
                path = f"/v1/patients/{patient}/vitals"
                body = http_body(indexed_vitals(patient, i))
                answer = clients.get(worker).request("POST", path, body)
                observer.written(patient, int(answer["position"]), time.perf_counter())
                progress.advance(task)

            with load_generator_core():
                load = paced(rate, sizes.e2e_s, write, workers=WORKERS)
            lost = observer.drain()
            samples = observer.latencies_ms
            by_rate.append(
                {
                    "offered_per_s": rate,
                    "achieved_per_s": round(load.per_s, 1),
                    "writes": load.operations,
                    "errors": load.errors,
                    "not_visible": lost,
                    "write_p99_ms": load.p(99),
                    "p50_ms": round(percentile(samples, 50), 2),
                    "p95_ms": round(percentile(samples, 95), 2),
                    "p99_ms": round(percentile(samples, 99), 2),
                }
            )
    finally:
        clients.close()
    top = by_rate[-1]
    return {
        "p50_ms": top["p50_ms"],
        "p95_ms": top["p95_ms"],
        "p99_ms": top["p99_ms"],
        "offered_per_s": top["offered_per_s"],
        "by_rate": by_rate,
    }
