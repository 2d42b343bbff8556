"""The care team as governed data, and refusals compliance can see, against the real API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, join_care_team, register_patient, running_backbone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("care-team"), settings, 600) as running:
        yield running


def forbidden(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    return body


def test_a_physician_not_on_the_team_cannot_add_themself_and_compliance_sees_the_attempt(
    backbone: Backbone,
) -> None:
    # given a patient whose care team does not include the physician
    physician = backbone.login("physician")
    patient = register_patient(physician, f"CT-{uuid.uuid4().hex[:10]}")
    me = str(backbone.users["physician"])

    # when they add themself / then refused, and the chart stays closed to them
    body = forbidden(physician.post(f"/v1/patients/{patient}/care-team", json={"user_id": me}))
    assert "break the glass" in body["detail"]
    forbidden(physician.get(f"/v1/patients/{patient}/chart"))
    # nor may they add a colleague to a team they are not on
    nurse = str(backbone.users["nurse"])
    forbidden(physician.post(f"/v1/patients/{patient}/care-team", json={"user_id": nurse}))

    # then compliance sees the self-grant as an alert and every refusal as a denial
    compliance = backbone.login("compliance")
    alerts = compliance.get("/v1/audit/alerts").json()
    assert {"kind": "self_grant", "user_id": me, "patient_id": str(patient)} in [
        {k: a[k] for k in ("kind", "user_id", "patient_id")} for a in alerts
    ]
    denials = compliance.get("/v1/audit/denials", params={"patient_id": str(patient)}).json()
    seen = {(d["kind"], d["route"], d["status"], d["user_id"]) for d in denials}
    assert ("self_grant", "/v1/patients/{patient_id}/care-team", 403, me) in seen
    assert ("forbidden", "/v1/patients/{patient_id}/chart", 403, me) in seen
    assert all(d["client"] == "127.0.0.1" for d in denials)


def test_an_unauthenticated_read_of_a_chart_is_recorded_without_a_name(
    backbone: Backbone,
) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, f"CT-{uuid.uuid4().hex[:10]}")
    anonymous = backbone.client()
    assert anonymous.get(f"/v1/patients/{patient}/chart").status_code == 401

    compliance = backbone.login("compliance")
    denials = compliance.get("/v1/audit/denials", params={"patient_id": str(patient)}).json()
    assert [(d["kind"], d["status"], d["role"]) for d in denials] == [
        ("unauthenticated", 401, "anonymous")
    ]


def test_only_existing_active_clinical_users_join_and_removal_needs_a_reason(
    backbone: Backbone,
) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, f"CT-{uuid.uuid4().hex[:10]}")
    admin = backbone.login("admin")
    team = f"/v1/patients/{patient}/care-team"

    # a user id that names nobody, and a billing clerk, are refused with the field named
    for user_id in (str(uuid.uuid4()), str(backbone.users["billing"])):
        answer = admin.post(team, json={"user_id": user_id})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "user_id"

    # an administrator puts the physician on the team; the physician, now a member, adds a nurse
    join_care_team(backbone, patient, "physician")
    nurse_id = str(backbone.users["nurse"])
    assert physician.post(team, json={"user_id": nurse_id}).status_code == 201
    nurse = backbone.login("nurse")
    assert nurse.get(f"/v1/patients/{patient}/chart").status_code == 200
    both = {str(backbone.users["physician"]), nurse_id}
    assert wait_until(lambda: {m["user_id"] for m in admin.get(team).json()} == both, 10, 0.1)

    # removal without a reason is refused; with one, the nurse loses the chart at once
    no_reason = physician.post(team, json={"user_id": nurse_id, "change": "removed"})
    assert no_reason.status_code == 422, no_reason.text
    removed = physician.post(
        team, json={"user_id": nurse_id, "change": "removed", "reason": "moved to another ward"}
    )
    assert removed.status_code == 201, removed.text
    forbidden(nurse.get(f"/v1/patients/{patient}/chart"))


def test_alerts_page_by_cursor_and_none_falls_out_of_view(backbone: Backbone) -> None:
    # given several self-grant attempts (each an alert)
    physician = backbone.login("physician")
    me = str(backbone.users["physician"])
    for _ in range(3):
        patient = register_patient(physician, f"CT-{uuid.uuid4().hex[:10]}")
        forbidden(physician.post(f"/v1/patients/{patient}/care-team", json={"user_id": me}))
    compliance = backbone.login("compliance")
    everything = compliance.get("/v1/audit/alerts", params={"limit": 1000}).json()

    # when compliance pages through them, a few alerts at a time (exports are rate-limited)
    size = len(everything) // 4 + 1
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": size, **({"cursor": cursor} if cursor else {})}
        answer = compliance.get("/v1/audit/alerts", params=params)
        assert answer.status_code == 200, answer.text
        pages += answer.json()
        cursor = answer.headers.get("X-Next-Cursor")
        if cursor is None or not answer.json():
            break

    # then the pages join into the whole list, newest first, without repeats
    assert len([a for a in everything if a["kind"] == "self_grant"]) >= 3
    assert size < len(everything)  # more than one page
    assert pages == everything
    assert [a["at"] for a in pages] == sorted((a["at"] for a in pages), reverse=True)
