"""``python -m bench [--quick] [--out PATH]``: run every scenario, print the table, write JSON.

Expects the local stack to be up (``make bench`` starts it). Each scenario runs on an
isolated store and read schema that are dropped afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import report
from bench.progress import progress_bars
from bench.scenarios import append, chart_read, e2e, fhir, hl7, rebuild, relay, scale
from bench.sizes import FULL, QUICK
from bench.stack import bench_stack
from events.settings import StoreSettings
from services.settings import get_settings
from services.supervisor import PROCESSES, Supervisor

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON path")
    parser.add_argument(
        "--scale",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        help="stored-event levels for the scale scenario, e.g. 10000,100000",
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True, width=120)
    running = [p.name for p in PROCESSES if Supervisor(get_settings()).pid(p) is not None]
    if running:
        # They consume every local topic: the bench's events would land in their read tables.
        console.print(
            f"[red]the local backbone is running ({', '.join(running)}); stop it first with "
            "`make down` (its projections would consume the bench's events)[/red]"
        )
        sys.exit(2)
    sizes = QUICK if args.quick else FULL
    if args.scale:
        sizes = replace(sizes, scale_levels=args.scale)
    began = time.monotonic()
    results: dict[str, Any] = {
        "size": sizes.name,
        "machine": report.machine(StoreSettings().database_url),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp, progress_bars(console) as bars:
            with bench_stack(Path(tmp) / "main") as stack:
                results["append"] = append.run(stack, sizes, bars)
                results["relay"] = relay.run(stack, sizes, bars)
                stack.start("keys", "relay", "project", "serve")
                results["e2e"] = e2e.run(stack, sizes, bars)
                patients = chart_read.population(stack, sizes, bars)
                results["chart_read"] = chart_read.run(stack, sizes, patients)
                results["fhir"] = fhir.run(stack, sizes, bars, patients)
                results["hl7"] = hl7.run(stack, sizes, bars)
                results["rebuild"] = rebuild.run(stack, bars)
            results["scale"] = scale.run(Path(tmp) / "scale", sizes, bars)
    except Exception as exc:
        console.print(f"[red]bench failed:[/red] {type(exc).__name__}: {exc}")
        sys.exit(1)
    results["seconds"] = round(time.monotonic() - began, 1)
    report.write(results, args.out)
    report.show(console, results)
    a, c = results["append"], results["chart_read"]
    console.print(
        f"bench {sizes.name}: done in {results['seconds']:.0f} s; append {a['ratio']:.2f}x raw, "
        f"relay {results['relay']['ratio']:.2f}x, chart {c['ratio']:.2f}x, "
        f"rebuild {results['rebuild']['ratio']:.2f}x, hl7 {results['hl7']['msg_per_s']:.0f} "
        f"msg/s ({results['hl7']['ratio']:.2f}x), fhir $everything "
        f"{results['fhir']['ratio']:.2f}x, export {results['fhir']['export_ratio']:.2f}x; "
        f"results in {args.out}"
    )
