"""Bad inputs a client may send, against the real API: each is refused clearly, nothing lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    PASSWORD,
    Backbone,
    join_care_team,
    register_patient,
    running_backbone,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("bad-inputs"), settings, 600) as running:
        yield running


def mrn() -> str:
    return f"BAD-{uuid.uuid4().hex[:10]}"


def test_one_idempotency_key_on_two_different_administrations_answers_422(
    backbone: Backbone,
) -> None:
    # given a prescription and a nurse on the care team
    physician = backbone.login("physician")
    patient = register_patient(physician, mrn())
    join_care_team(backbone, patient, "physician", "nurse")
    medication = physician.post(
        f"/v1/patients/{patient}/medications",
        json=METFORMIN,
    ).json()["id"]
    nurse = backbone.login("nurse")
    key = {"Idempotency-Key": f"mar-{uuid.uuid4()}"}
    urgent = "first dose before verification (urgent)"

    # when the same key comes with a second, different administration
    first = nurse.post(
        f"/v1/medications/{medication}/administrations",
        json={"dose": 500, "override_reason": urgent},
        headers=key,
    )
    second = nurse.post(
        f"/v1/medications/{medication}/administrations",
        json={"dose": 250, "override_reason": f"{urgent}; half dose, vomiting"},
        headers=key,
    )

    # then the second is refused with 422 problem+json, and the first still stands alone
    assert first.status_code == 201, first.text
    assert second.status_code == 422, second.text
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["type"].endswith("/idempotency-key-reused")
    history = physician.get(f"/v1/patients/{patient}/history").json()["events"]
    assert [e["event_type"] for e in history].count("medication.administered") == 1


def test_a_nul_in_a_search_name_is_422_and_in_a_username_401(backbone: Backbone) -> None:
    physician = backbone.login("physician")
    search = physician.get("/v1/patients", params={"name": "Ok\u0000afor"})
    login = backbone.client().post(
        "/v1/auth/token", data={"username": "physi\u0000cian", "password": PASSWORD}
    )
    assert search.status_code == 422, search.text
    assert search.headers["content-type"].startswith("application/problem+json")
    assert login.status_code == 401, login.text
