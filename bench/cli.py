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
from services.supervisor import Supervisor

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (CI)")
    parser.add_argument(
        "--out",
        type=Path,
        help="results JSON path (default bench/results.json; with --only, under .data/bench/)",
    )
    parser.add_argument(
        "--scale",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        help="stored-event levels for the scale scenario, e.g. 10000,100000",
    )
    parser.add_argument(
        "--only",
        type=lambda text: tuple(text.split(",")),
        default=SCENARIOS,
        help=f"scenarios to run, comma-separated, of: {','.join(SCENARIOS)}",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {','.join(SCENARIOS)}")
    console = Console(stderr=True, width=120)
    supervisor = Supervisor(get_settings())
    running = [p.name for p in supervisor.processes if supervisor.pid(p) is not None]
    if running:
        # The bench has topics of its own, but the running processes would share the cores
        # it measures.
        console.print(
            f"[red]the local backbone is running ({', '.join(running)}); stop it first with "
            "`make down` (its processes would share the cores the bench measures)[/red]"
        )
        sys.exit(2)
    out: Path = args.out or (
        DEFAULT_OUT
        if args.only == SCENARIOS
        else get_settings().data_dir / "bench" / f"{'-'.join(args.only)}.json"
    )
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
                _run_on_stack(stack, sizes, bars, args.only, results)
            if "scale" in args.only:
                results["scale"] = scale.run(Path(tmp) / "scale", sizes, bars)
    except Exception as exc:
        console.print(f"[red]bench failed:[/red] {type(exc).__name__}: {exc}")
        sys.exit(1)
    results["seconds"] = round(time.monotonic() - began, 1)
    report.write(results, out)
    report.show(console, results)
    console.print(
        f"bench {sizes.name}: done in {results['seconds']:.0f} s; {summary(results)}; "
        f"results in {out}"
    )


SCENARIOS = ("append", "relay", "e2e", "chart_read", "fhir", "hl7", "rebuild", "scale")


def _run_on_stack(
    stack: Any, sizes: Any, bars: Any, only: tuple[str, ...], results: dict[str, Any]
) -> None:
    """The scenarios that share one stack, in order (the reads need the processes up)."""
    if "append" in only or "relay" in only:  # the relay publishes what append stored
        results["append"] = append.run(stack, sizes, bars)
    if "relay" in only:
        results["relay"] = relay.run(stack, sizes, bars)
    if not set(only) & {"e2e", "chart_read", "fhir", "hl7", "rebuild"}:
        return
    stack.start("keys", "relay", "project", "serve")
    if "e2e" in only:
        results["e2e"] = e2e.run(stack, sizes, bars)
    if set(only) & {"chart_read", "fhir"}:
        patients = chart_read.population(stack, sizes, bars)
        if "chart_read" in only:
            results["chart_read"] = chart_read.run(stack, sizes, patients)
        if "fhir" in only:
            results["fhir"] = fhir.run(stack, sizes, bars, patients)
    if "hl7" in only:
        results["hl7"] = hl7.run(stack, sizes, bars)
    if "rebuild" in only:
        results["rebuild"] = rebuild.run(stack, bars)


def summary(results: dict[str, Any]) -> str:
    """One line: each scenario's ratio against its raw baseline."""
    parts = [
        f"{name} {results[name]['ratio']:.2f}x"
        for name in ("append", "relay", "chart_read", "rebuild")
        if name in results
    ]
    if "e2e" in results:
        parts.append(f"end-to-end p99 {results['e2e']['p99_ms']} ms")
    if "hl7" in results:
        parts.append(f"hl7 {results['hl7']['msg_per_s']:.0f} msg/s")
    if "fhir" in results:
        f = results["fhir"]
        parts.append(f"fhir $everything {f['ratio']:.2f}x, export {f['export_ratio']:.2f}x")
    return ", ".join(parts)
