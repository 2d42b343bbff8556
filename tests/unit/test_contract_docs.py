"""The committed contract in docs/events/ is exactly what the code exports."""

from __future__ import annotations

from pathlib import Path

from events.contract import SPECS
from events.schema_export import contract_files

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def test_committed_schemas_match_what_the_code_exports() -> None:
    exported = contract_files()
    committed = {p.name: p.read_text() for p in DOCS.iterdir() if p.is_file()}
    assert sorted(committed) == sorted(exported), "run `backbone schema export`"
    for name, content in exported.items():
        assert committed[name] == content, f"{name} is stale: run `backbone schema export`"


def test_every_event_type_and_version_has_a_schema_and_a_row() -> None:
    exported = contract_files()
    for spec in SPECS:
        assert f"| `{spec.event_type}` |" in exported["README.md"]
        for model in spec.versions:
            assert f"{spec.event_type}.v{model.schema_version}.schema.json" in exported
    assert "envelope.schema.json" in exported
