"""The benchmark harness at its quick size: every scenario runs and reports (no speed asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.sizes import QUICK
from events.settings import StoreSettings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# What results.json promises, per scenario.
REPORTED = {
    "append": ("events_per_s", "raw_per_s", "ratio", "p99_ms", "batch_events_per_s"),
    "relay": ("events_per_s", "raw_per_s", "ratio", "lag_p99_events"),
    "e2e": ("p50_ms", "p95_ms", "p99_ms", "offered_per_s"),
    "chart_read": ("rps", "raw_rps", "ratio", "p50_ms", "p99_ms", "clients"),
    "rebuild": ("events_per_s", "raw_per_s", "ratio"),
    "hl7": ("msg_per_s", "ratio", "ack_p99_ms"),
    "fhir": ("everything_rps", "raw_rps", "ratio", "p99_ms", "export_per_s", "export_ratio"),
}


def bench_leftovers() -> list[str]:
    with psycopg.connect(StoreSettings().database_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'bench%' UNION ALL "
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_the_quick_bench_runs_every_scenario_and_writes_its_results(tmp_path: Path) -> None:
    before = set(bench_leftovers())
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "bench quick: done" in done.stderr

    results = json.loads(out.read_text())
    assert {"machine", "scale", *REPORTED} <= results.keys()
    assert results["machine"]["cores"] >= 1 and results["machine"]["postgresql"] != "unknown"
    for scenario, fields in REPORTED.items():
        for field in fields:
            value = results[scenario][field]
            assert isinstance(value, int | float) and value > 0, (scenario, field, value)
    append = results["append"]
    assert append["commands"] == 8 * QUICK.append_each and append["errors"] == 0
    for run in results["e2e"]["by_rate"]:
        assert run["errors"] == 0 and run["not_visible"] == 0 and run["writes"] > 0
    assert [r["offered_per_s"] for r in results["e2e"]["by_rate"]] == list(QUICK.e2e_rates)
    assert results["chart_read"]["errors"] == 0
    assert results["chart_read"]["patients"] == QUICK.chart_patients
    assert results["fhir"]["errors"] == 0 and results["fhir"]["patients"] == QUICK.chart_patients
    # every patient has at least its Patient resource, vitals and allergy in the export
    assert results["fhir"]["export_resources"] >= 3 * QUICK.chart_patients
    for connections, row in results["hl7"]["connections"].items():
        assert row["errors"] == 0 and row["msg_per_s"] > 0 and row["raw_msg_per_s"] > 0, connections
    assert sorted(results["hl7"]["connections"]) == ["1", "8"]
    assert [
        row["events"] >= level
        for row, level in zip(results["scale"], QUICK.scale_levels, strict=True)
    ] == [True] * len(QUICK.scale_levels)
    for row in results["scale"]:
        assert row["append_per_s"] > 0 and row["chart_p99_ms"] > 0 and row["rebuild_per_s"] > 0
    # Each run's isolated stores and schemas are dropped.
    assert set(bench_leftovers()) == before
