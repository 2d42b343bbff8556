"""The committed contract in docs/events/ is exactly what the code exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from events.domain.contract import SPECS
from events.schema_export import contract_files
from services.api.app import create_app

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


def test_every_api_route_has_an_example_in_the_openapi_document() -> None:
    document = create_app().openapi()
    schemas = document["components"]["schemas"]

    def has_example(content: dict[str, Any]) -> bool:
        schema = content.get("schema", {})
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        return "example" in str(content) or "examples" in schemas.get(ref, {})

    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if not any(
            has_example(content)
            for part in (
                operation.get("requestBody", {}).get("content", {}),
                *(answer.get("content", {}) for answer in operation["responses"].values()),
            )
            for content in part.values()
        )
    ]
    assert missing == []
