"""The OpenAPI document states what the server enforces: statuses, vocabularies, patterns."""

from __future__ import annotations

from typing import Any

import pytest

from services.api.app import create_app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(lambda: None)  # type: ignore[arg-type,return-value]
    return app.openapi()


def responses(document: dict[str, Any], method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_every_authenticated_route_documents_401_and_403(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_clinical_writes_document_404_409_410_and_422_as_problem_json(
    document: dict[str, Any],
) -> None:
    for path in (
        "/v1/patients/{patient_id}/allergies",
        "/v1/orders/{order_id}/results",
        "/v1/medications/{medication_id}/administrations",
    ):
        assert {"201", "401", "403", "404", "409", "410", "422"} <= responses(
            document, "post", path
        )
        answer = document["paths"][path]["post"]["responses"]["410"]
        assert "application/problem+json" in answer["content"]


def test_the_token_route_documents_the_lockout(document: dict[str, Any]) -> None:
    assert {"401", "422", "423"} <= responses(document, "post", "/v1/auth/token")


def test_prescriptions_state_the_frequency_vocabulary_units_and_routes(
    document: dict[str, Any],
) -> None:
    schema = document["components"]["schemas"]["MedicationCreate"]["properties"]
    assert "bid" in schema["frequency"]["pattern"] and "prn" in schema["frequency"]["pattern"]
    assert set(schema["dose_unit"]["enum"]) >= {"mg", "mcg", "meq", "mmol"}
    assert "iv" in schema["route"]["enum"]
    assert schema["drug_code"]["pattern"] == r"^\d{1,10}$"
