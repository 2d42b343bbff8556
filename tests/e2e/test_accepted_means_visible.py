"""Accepted means visible: what the API refuses with 422, and what it accepts reaches the chart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, join_care_team, register_patient, running_backbone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("visible"), settings, 600) as running:
        yield running


@pytest.fixture(scope="module")
def chart_writer(backbone: Backbone) -> tuple[httpx.Client, str]:
    physician = backbone.login("physician")
    patient = register_patient(physician, f"VIS-{uuid.uuid4().hex[:10]}")  # born 1975-05-05
    join_care_team(backbone, patient, "physician")
    return physician, str(patient)


def refused(answer: httpx.Response, field: str) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert field in answer.text
    return body


@pytest.mark.parametrize(
    "substance", ["latex\u0000", "la\u0007tex", "latex\u202e", "latex\nglove", "x" * 201]
)
def test_text_the_chart_could_not_hold_is_refused_with_422(
    chart_writer: tuple[httpx.Client, str], substance: str
) -> None:
    physician, patient = chart_writer
    answer = physician.post(
        f"/v1/patients/{patient}/allergies",
        json={"substance": substance, "reaction": "rash", "severity": "mild"},
    )
    refused(answer, "substance")


@pytest.mark.parametrize(
    "occurred_at",
    [0, "0", "0001-01-01T00:00:00+05:00", "1900-01-01T00:00:00Z", "2999-01-01T00:00:00Z"],
)
def test_clinical_times_outside_the_patients_life_are_refused_never_a_500(
    chart_writer: tuple[httpx.Client, str], occurred_at: object
) -> None:
    physician, patient = chart_writer
    answer = physician.post(
        f"/v1/patients/{patient}/vitals", json={"heart_rate": 80, "occurred_at": occurred_at}
    )
    refused(answer, "occurred_at")


@pytest.mark.parametrize("route", ["care-team", "break-glass"])
def test_a_numeric_occurred_at_is_refused_on_access_writes(
    backbone: Backbone, chart_writer: tuple[httpx.Client, str], route: str
) -> None:
    physician, patient = chart_writer
    body: dict[str, Any] = {"occurred_at": 0, "reason": "emergency in the ward"}
    if route == "care-team":
        body = {"occurred_at": 0, "user_id": str(backbone.users["nurse"])}
    refused(physician.post(f"/v1/patients/{patient}/{route}", json=body), "occurred_at")


def test_a_reason_with_a_control_character_is_refused(
    chart_writer: tuple[httpx.Client, str],
) -> None:
    physician, patient = chart_writer
    answer = physician.post(
        f"/v1/patients/{patient}/break-glass", json={"reason": "emergency\u0000 now"}
    )
    refused(answer, "reason")


def test_accepted_text_is_normalised_and_visible_in_the_chart(
    chart_writer: tuple[httpx.Client, str],
) -> None:
    physician, patient = chart_writer
    # given a substance typed with a combining accent (NFD), as some keyboards send it
    answer = physician.post(
        f"/v1/patients/{patient}/allergies",
        json={"substance": "Cre\u0300me de soja", "reaction": "hives", "severity": "moderate"},
    )
    assert answer.status_code == 201, answer.text
    chart = physician.get(
        f"/v1/patients/{patient}/chart", params={"min_position": answer.json()["position"]}
    )
    assert chart.status_code == 200, chart.text
    # then the chart shows it, composed (NFC)
    assert "Cr\u00e8me de soja" in [a["substance"] for a in chart.json()["allergies"]]
