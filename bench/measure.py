"""Timing helpers: concurrent closed-loop load, paced open-loop load, percentiles, rates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``samples``; 0 when empty."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(round(q / 100 * len(ordered) + 0.5) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline > 0 else 0.0


@dataclass
class Load:
    """What a load run did: operations, wall time and each operation's latency (ms)."""

    operations: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def per_s(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    def p(self, q: float) -> float:
        return round(percentile(self.latencies_ms, q), 2)


# An operation gets (worker number, iteration) and does one unit of work.
Operation = Callable[[int, int], None]


def hammer(
    workers: int,
    operation: Operation,
    *,
    each: int | None = None,
    seconds: float | None = None,
) -> Load:
    """Closed loop: ``workers`` threads run ``operation`` back to back, ``each`` times or for
    ``seconds``. Failed operations are counted, not timed."""
    if (each is None) == (seconds is None):
        raise ValueError("give exactly one of each or seconds")
    load = Load()
    lock = threading.Lock()
    # The clock starts when every thread is ready: the barrier's action sets it.
    clock = [0.0]
    start = threading.Barrier(workers + 1, action=lambda: clock.__setitem__(0, time.perf_counter()))
    run_for = seconds or 0.0

    def work(worker: int) -> None:
        mine: list[float] = []
        failed = 0
        start.wait()
        i = 0
        while (i < each) if each is not None else (time.perf_counter() < clock[0] + run_for):
            began = time.perf_counter()
            try:
                operation(worker, i)
                mine.append((time.perf_counter() - began) * 1000)
            except Exception:
                failed += 1
            i += 1
        with lock:
            load.latencies_ms.extend(mine)
            load.errors += failed

    return _run(workers, work, load, lambda: clock[0], start)


def paced(rate: float, seconds: float, operation: Operation, *, workers: int = 16) -> Load:
    """Open loop: start ``operation`` ``rate`` times a second for ``seconds`` whatever the
    answers take (late starts are not skipped); latency is counted from the scheduled start."""
    total = int(rate * seconds)
    load = Load()
    lock = threading.Lock()
    counter = iter(range(total))
    began = time.perf_counter() + 0.05

    def work(worker: int) -> None:
        for i in counter:
            scheduled = began + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                operation(worker, i)
                took = (time.perf_counter() - scheduled) * 1000
                with lock:
                    load.latencies_ms.append(took)
            except Exception:
                with lock:
                    load.errors += 1

    return _run(workers, work, load, lambda: began)


def _run(
    workers: int,
    work: Callable[[int], None],
    load: Load,
    began: Callable[[], float],
    start: threading.Barrier | None = None,
) -> Load:
    """Run ``work`` on ``workers`` threads (released together by ``start``, if given) and
    complete ``load`` with the wall time since ``began()``."""
    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for thread in threads:
        thread.start()
    if start is not None:
        start.wait()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - began()
    load.operations = len(load.latencies_ms)
    return load
