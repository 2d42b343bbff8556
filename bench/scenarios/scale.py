"""Scale: append rate, chart p99 and rebuild rate as the store grows (10^4, 10^5, 10^6).

A separate isolated backbone starts with a population of patients and grows by bulk-imported
vital signs; at each level, once the relay and projections have caught up, the same probes
run: eight writers of single-event commands, 32 chart readers, a chart projection rebuild.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.population import grow, populate
from bench.progress import Progress
from bench.scenarios.append import vitals_load
from bench.scenarios.chart_read import api_reads
from bench.sizes import Sizes
from bench.stack import bench_stack
from events.domain.envelope import SYSTEM_ACTOR
from projections.engine.rebuild import rebuild
from projections.registry import named


def run(tmp: Path, sizes: Sizes, progress: Progress) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tmp.mkdir(parents=True, exist_ok=True)
    with bench_stack(tmp) as stack:
        stack.start("keys", "relay", "project", "serve")
        patients = populate(stack, max(sizes.scale_levels[0] // 10, 100), "scale", progress)
        for level in sizes.scale_levels:
            task = progress.task(f"scale {level:,}", max(level - stack.head(), 0))
            grow(stack.store, SYSTEM_ACTOR, patients, level, progress.ticker(task))
            catch_up_s = stack.wait_caught_up()
            append = vitals_load(stack, patients, sizes.scale_commands, lambda _: None)
            chart = api_reads(stack, patients, sizes.chart_clients, sizes.scale_chart_s)
            rebuilt = rebuild(
                stack.reads,
                stack.store,
                named("patient_chart"),
                stack.projection_settings.read_schema,
            )
            rows.append(
                {
                    "events": rebuilt.events,
                    "append_per_s": round(append.per_s, 1),
                    "append_p99_ms": append.p(99),
                    "chart_p99_ms": chart.p(99),
                    "chart_rps": round(chart.per_s, 1),
                    "rebuild_per_s": round(rebuilt.events_per_s, 1),
                    "catch_up_s": round(catch_up_s, 1),
                }
            )
    return rows
