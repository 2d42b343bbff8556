"""docs/scaling.md quotes the measured figures as bench/results.json has them, names tests
that exist, and is linked from the README and the operations guide."""

from __future__ import annotations

import json
import re

from services.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "scaling.md"
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_the_figures_quoted_are_those_of_the_last_full_bench_run() -> None:
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    text = " ".join(DOC.read_text().split())
    append, chart = results["append"], results["chart_read"]
    expected = [
        f"**{results['machine']['cpu']}, {results['machine']['cores']} cores**",
        f"{append['events_per_s']:,.0f} events/s, p99 {append['p99_ms']:.1f} ms",
        f"{results['scale'][-1]['append_per_s']:,.0f} events/s",
        f"{append['batch_events_per_s']:,.0f} events/s",
        f"{results['relay']['events_per_s']:,.0f} events/s",
        f"p99 {results['e2e']['p99_ms']:.1f} ms at {results['e2e']['offered_per_s']} writes/s",
        f"{chart['rps']:,.0f} requests/s, p99 {chart['p99_ms']:.0f} ms",
        f"{results['rebuild']['events_per_s']:,.0f} events/s "
        f"({results['scale'][-1]['rebuild_per_s']:,.0f} at 10^6 events)",
        f"{append['event_bytes']} bytes",
        f"{append['commands_per_transaction']} commands per transaction",
    ]
    assert [figure for figure in expected if figure not in text] == []


def test_every_test_the_scaling_doc_names_exists() -> None:
    for path, name in TEST_REFERENCE.findall(DOC.read_text()):
        assert (REPO_ROOT / path).is_file(), path
        assert not name or f"def {name}(" in (REPO_ROOT / path).read_text(), f"{path}::{name}"


def test_the_readme_and_the_operations_guide_link_it() -> None:
    assert "(docs/scaling.md)" in (REPO_ROOT / "README.md").read_text()
    assert "(scaling.md)" in (REPO_ROOT / "docs" / "operations.md").read_text()
