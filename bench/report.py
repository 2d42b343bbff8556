"""The bench's outputs: the machine it ran on, the results table and ``results.json``."""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

KAFKA_POM = Path(__file__).resolve().parent.parent / "infra" / "kafka" / "pom.xml"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def machine(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    kafka = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": version[0] if version else "unknown",
        "synchronous_commit": sync[0] if sync else "unknown",
        "kafka": kafka.group(1) if kafka else "unknown",
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(results: dict[str, Any]) -> Table:
    """Each scenario: the backbone, its raw baseline, the ratio, latencies and the goal."""
    out = Table(title=f"clinical-backbone bench ({results['size']})")
    for column in ("scenario", "backbone", "raw baseline", "ratio", "latency", "goal"):
        out.add_column(column)
    empty: dict[str, Any] = {}
    a, r, e, c, b = (
        results.get(k, empty) for k in ("append", "relay", "e2e", "chart_read", "rebuild")
    )
    if a:
        _append_rows(out, a)
    if r:
        out.add_row(
            "relay to Kafka",
            f"{_n(r['events_per_s'])} ev/s",
            f"{_n(r['raw_per_s'])} msg/s",
            f"{r['ratio']:.2f}x",
            f"lag p99 {r['lag_p99_events']:.0f} ev",
            ">= 0.7x, >= 3x append",
        )
    for row in e.get("by_rate", ()):
        out.add_row(
            f"end-to-end @{row['offered_per_s']:.0f}/s",
            f"{_n(row['achieved_per_s'])} writes/s",
            "",
            "",
            f"p50 {row['p50_ms']} / p95 {row['p95_ms']} / p99 {row['p99_ms']} ms",
            "p99 <= 100 ms @200/s",
        )
    if c:
        out.add_row(
            f"chart read, {c['clients']} clients",
            f"{_n(c['rps'])} req/s",
            f"{_n(c['raw_rps'])} q/s",
            f"{c['ratio']:.2f}x",
            f"p50 {c['p50_ms']} / p99 {c['p99_ms']} ms",
            ">= 0.8x, p99 <= 25 ms",
        )
    if b:
        out.add_row(
            "rebuild",
            f"{_n(b['events_per_s'])} ev/s",
            f"{_n(b['raw_per_s'])} ev/s",
            f"{b['ratio']:.2f}x",
            "",
            ">= 0.5x, >= 20,000 ev/s",
        )
    _other_rows(out, results)
    return out


def _append_rows(out: Table, a: dict[str, Any]) -> None:
    out.add_row(
        "append, 8 writers",
        f"{_n(a['events_per_s'])} ev/s",
        f"{_n(a['raw_per_s'])} rows/s",
        f"{a['ratio']:.2f}x",
        f"p99 {a['p99_ms']} ms",
        ">= 1.0x, p99 <= 10 ms",
    )
    out.add_row(
        "append, bulk import",
        f"{_n(a['batch_events_per_s'])} ev/s",
        f"{_n(a['batch_raw_per_s'])} rows/s",
        f"{a['batch_ratio']:.2f}x",
        "",
        "",
    )


def _other_rows(out: Table, results: dict[str, Any]) -> None:
    for connections, row in results.get("hl7", {}).get("connections", {}).items():
        out.add_row(
            f"HL7 ORU^R01, {connections} conn.",
            f"{_n(row['msg_per_s'])} msg/s",
            f"{_n(row['raw_msg_per_s'])} msg/s",
            f"{row['ratio']:.2f}x",
            f"ACK p50 {row['ack_p50_ms']} / p99 {row['ack_p99_ms']} ms",
            ">= 500 msg/s, p99 <= 50 ms @8" if connections == "8" else "",
        )
    f = results.get("fhir")
    if f is not None:
        out.add_row(
            f"FHIR $everything, {f['clients']} clients",
            f"{_n(f['everything_rps'])} req/s",
            f"{_n(f['raw_rps'])} q/s",
            f"{f['ratio']:.2f}x",
            f"p50 {f['p50_ms']} / p99 {f['p99_ms']} ms",
            "",
        )
        out.add_row(
            "FHIR bulk $export",
            f"{_n(f['export_per_s'])} res/s",
            f"{_n(f['raw_scan_per_s'])} rows/s",
            f"{f['export_ratio']:.2f}x",
            f"{f['export_resources']:,} resources",
            "",
        )
    for row in results.get("scale", ()):
        out.add_row(
            f"scale @{row['events']:,} ev",
            f"append {_n(row['append_per_s'])}/s, rebuild {_n(row['rebuild_per_s'])}/s",
            "",
            "",
            f"chart p99 {row['chart_p99_ms']} ms",
            "",
        )


def show(console: Console, results: dict[str, Any]) -> None:
    console.print(table(results))
