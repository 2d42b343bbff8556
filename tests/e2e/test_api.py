"""The API as a client uses it, against the real API, relay and projection processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest

from services.auth import totp
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    PASSWORD,
    Backbone,
    join_care_team,
    register_patient,
    registered_at,
    running_backbone,
)

pytestmark = pytest.mark.integration

IDLE_TIMEOUT_S = 6


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("backbone"), settings, IDLE_TIMEOUT_S) as running:
        yield running


def mrn() -> str:
    return f"E2E-{uuid.uuid4().hex[:10]}"


def on_care_team(backbone: Backbone, patient: UUID, *roles: str) -> None:
    join_care_team(backbone, patient, "physician", *roles)


def test_register_prescribe_and_the_chart_shows_it_without_sleeping(backbone: Backbone) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, mrn())
    on_care_team(backbone, patient)

    prescribed = physician.post(
        f"/v1/patients/{patient}/medications",
        json={
            "drug_code": "29046",
            "drug_name": "lisinopril",
            "dose": 10,
            "dose_unit": "mg",
            "route": "oral",
            "frequency": "daily",
        },
    )
    assert prescribed.status_code == 201, prescribed.text
    position = prescribed.json()["position"]

    chart = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})

    assert chart.status_code == 200, chart.text
    assert int(chart.headers["X-Projection-Position"]) >= position
    medications = chart.json()["active_medications"]
    assert [m["drug_name"] for m in medications] == ["lisinopril"]
    assert medications[0]["verification"] == "pending"
    assert chart.json()["patient"]["family_name"] == "Testperson"


def test_results_answer_their_flags_and_bad_input_is_a_problem(backbone: Backbone) -> None:
    physician, lab = backbone.login("physician"), backbone.login("lab_tech")
    patient = register_patient(physician, mrn())
    on_care_team(backbone, patient, "nurse")
    order = physician.post(
        f"/v1/patients/{patient}/orders",
        json={"test_code": "2823-3", "test_name": "Potassium", "priority": "stat"},
    )
    assert order.status_code == 201
    order_id = order.json()["id"]
    backbone.login("nurse").post(f"/v1/orders/{order_id}/specimen", json={}).raise_for_status()

    results = lab.post(
        f"/v1/orders/{order_id}/results",
        json={
            "results": [
                {
                    "code": "2823-3",
                    "name": "Potassium",
                    "value": 7.1,
                    "unit": "mEq/L",
                    "reference_low": 3.5,
                    "reference_high": 5.1,
                }
            ]
        },
    )
    impossible = backbone.login("nurse").post(
        f"/v1/patients/{patient}/vitals", json={"heart_rate": 900}
    )

    assert results.status_code == 201 and results.json()["results"][0]["flag"] == "HH"
    assert impossible.status_code == 422
    assert impossible.headers["content-type"].startswith("application/problem+json")
    assert impossible.json()["errors"][0]["field"] == "heart_rate"


def test_a_duplicate_mrn_answers_409_with_the_existing_id(backbone: Backbone) -> None:
    front_desk = backbone.login("front_desk")
    number = mrn()
    first = register_patient(front_desk, number)
    again = front_desk.post(
        "/v1/patients",
        json={
            "mrn": number,
            "family_name": "Other",
            "given_names": ["X"],
            "birth_date": "1990-01-01",
            "sex": "male",
        },
    )
    assert again.status_code == 409
    assert again.json()["existing_id"] == str(first)


def test_concurrent_changes_to_one_medication_conflict_with_409(backbone: Backbone) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, mrn())
    on_care_team(backbone, patient)
    medication = physician.post(
        f"/v1/patients/{patient}/medications",
        json=METFORMIN,
    ).json()["id"]

    def change(i: int) -> int:
        with httpx.Client(
            base_url=backbone.url, headers=physician.headers, timeout=30, verify=backbone.verify
        ) as client:
            return client.post(
                f"/v1/medications/{medication}/change",
                json={"dose": 500 + i, "reason": f"titration step {i}"},
            ).status_code

    codes: list[int] = []
    for _ in range(5):  # a race: repeat until it has happened at least once
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(change, range(12)))
        if 409 in codes:
            break
    assert set(codes) <= {201, 409}
    assert 409 in codes and 201 in codes


def test_an_idempotent_retry_answers_the_same_id_and_stores_one_event(backbone: Backbone) -> None:
    nurse_physician = backbone.login("physician")
    patient = register_patient(nurse_physician, mrn())
    on_care_team(backbone, patient)
    headers = {"Idempotency-Key": f"vitals-{uuid.uuid4()}"}

    first = nurse_physician.post(
        f"/v1/patients/{patient}/vitals", json={"heart_rate": 72}, headers=headers
    )
    second = nurse_physician.post(
        f"/v1/patients/{patient}/vitals", json={"heart_rate": 72}, headers=headers
    )
    third = nurse_physician.post(f"/v1/patients/{patient}/vitals", json={"heart_rate": 73})

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert third.json()["position"] > first.json()["position"]
    assert third.json()["id"] != first.json()["id"]


def test_a_nurse_on_patient_as_care_team_cannot_read_patient_b(backbone: Backbone) -> None:
    physician, nurse = backbone.login("physician"), backbone.login("nurse")
    (patient_a, position), patient_b = (
        registered_at(physician, mrn()),
        register_patient(physician, mrn()),
    )
    on_care_team(backbone, patient_a, "nurse")

    allowed = nurse.get(f"/v1/patients/{patient_a}/chart", params={"min_position": position})
    assert allowed.status_code == 200, allowed.text
    refused = nurse.get(f"/v1/patients/{patient_b}/chart")
    assert refused.status_code == 403
    assert (
        nurse.post(f"/v1/patients/{patient_b}/vitals", json={"heart_rate": 70}).status_code == 403
    )


def test_break_glass_opens_the_chart_and_compliance_sees_it_at_once(backbone: Backbone) -> None:
    physician, nurse, compliance = (
        backbone.login("physician"),
        backbone.login("nurse"),
        backbone.login("compliance"),
    )
    patient = register_patient(physician, mrn())

    assert nurse.get(f"/v1/patients/{patient}/chart").status_code == 403
    assert nurse.post(f"/v1/patients/{patient}/break-glass", json={"reason": ""}).status_code == 422
    granted = nurse.post(
        f"/v1/patients/{patient}/break-glass", json={"reason": "patient collapsed in corridor"}
    )
    assert granted.status_code == 201, granted.text
    alerts = compliance.get("/v1/audit/alerts").json()

    assert any(a["kind"] == "break_glass" and a["patient_id"] == str(patient) for a in alerts)
    chart = nurse.get(
        f"/v1/patients/{patient}/chart", params={"min_position": granted.json()["position"]}
    )
    assert chart.status_code == 200, chart.text


def test_a_chart_read_shows_up_in_the_access_log(backbone: Backbone) -> None:
    physician, compliance = backbone.login("physician"), backbone.login("compliance")
    patient, position = registered_at(physician, mrn())
    on_care_team(backbone, patient)
    chart = physician.get(
        f"/v1/patients/{patient}/chart", params={"min_position": position, "purpose": "ward round"}
    )
    assert chart.status_code == 200, chart.text

    def logged() -> bool:
        records = compliance.get("/v1/audit/access", params={"patient_id": str(patient)}).json()
        return any(
            r["user_id"] == str(backbone.users["physician"]) and r["purpose"] == "ward round"
            for r in records
        )

    assert wait_until(logged, 30, 0.2)


def test_an_idle_session_is_logged_off(backbone: Backbone) -> None:
    nurse = backbone.login("nurse")
    assert nurse.get("/v1/me").status_code == 200
    time.sleep(IDLE_TIMEOUT_S + 1)  # the idle time is what is being tested
    assert nurse.get("/v1/me").status_code == 401


def test_five_failed_logins_lock_the_account_and_alert_compliance(backbone: Backbone) -> None:
    client = backbone.client()
    for _ in range(5):
        wrong = client.post(
            "/v1/auth/token",
            data={"username": backbone.username("billing"), "password": "not the password"},
        )
        assert wrong.status_code in (401, 423)
    locked = client.post(
        "/v1/auth/token", data={"username": backbone.username("billing"), "password": PASSWORD}
    )

    assert locked.status_code == 423
    assert locked.json()["type"].endswith("/locked")
    alerts = backbone.login("compliance").get("/v1/audit/alerts").json()
    assert any(
        a["kind"] == "locked_out" and a["username"] == backbone.username("billing") for a in alerts
    )


def test_a_user_with_totp_needs_the_second_factor(backbone: Backbone) -> None:
    secret = totp.new_secret()
    username = f"totp{uuid.uuid4().hex[:8]}"
    created = backbone.login("admin").post(
        "/v1/admin/users",
        json={
            "username": username,
            "display_name": "Two Factor",
            "role": "nurse",
            "password": PASSWORD,
            "totp_secret": secret,
        },
    )
    assert created.status_code == 201, created.text
    client = backbone.client()

    without = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    with_code = client.post(
        "/v1/auth/token",
        data={"username": username, "password": PASSWORD, "otp": totp.code_at(secret, time.time())},
    )

    assert without.status_code == 401
    assert with_code.status_code == 200 and with_code.json()["token_type"] == "bearer"


def test_readiness_and_metrics_report_the_pipeline(backbone: Backbone) -> None:
    client = backbone.client()
    backbone.login("nurse").get("/v1/me")

    ready = client.get("/readyz")
    metrics = client.get("/metrics")

    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]["projections"]) == {
        "patient_chart",
        "medications",
        "orders",
        "lab_results",
        "access_audit",
        "vital_signs",
    }
    assert (
        'backbone_http_request_seconds_count{method="GET",route="/v1/me",status="200"}'
        in metrics.text
    )
    assert "backbone_projection_lag_messages" in metrics.text
    assert "backbone_relay_lag_events" in metrics.text


def test_the_chart_replayed_as_of_past_moments_equals_the_live_chart_seen_then(
    backbone: Backbone,
) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, mrn())
    on_care_team(backbone, patient, "nurse")
    snapshots: list[tuple[str, dict[str, object]]] = []

    def capture(position: int) -> None:
        live = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
        assert live.status_code == 200, live.text
        snapshots.append((datetime.now(tz=UTC).isoformat(), live.json()))

    medication = physician.post(
        f"/v1/patients/{patient}/medications",
        json={
            "drug_code": "29046",
            "drug_name": "lisinopril",
            "dose": 10,
            "dose_unit": "mg",
            "route": "oral",
            "frequency": "daily",
        },
    ).json()
    capture(medication["position"])
    vitals = backbone.login("nurse").post(
        f"/v1/patients/{patient}/vitals", json={"heart_rate": 131, "spo2": 93}
    )
    capture(vitals.json()["position"])
    changed = physician.post(
        f"/v1/medications/{medication['id']}/change", json={"dose": 20, "reason": "BP above target"}
    )
    capture(changed.json()["position"])
    stopped = physician.post(
        f"/v1/medications/{medication['id']}/discontinue", json={"reason": "cough"}
    )
    capture(stopped.json()["position"])

    compliance = backbone.login("compliance")
    for moment, live in snapshots:
        replayed = compliance.get(f"/v1/patients/{patient}/chart", params={"as_of": moment})
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == live
    assert [s[1]["active_medications"][0]["dose"] for s in snapshots[:3]] == [10, 10, 20]
    assert snapshots[3][1]["active_medications"] == []


def test_history_lists_changes_with_before_and_after_and_reads(backbone: Backbone) -> None:
    physician = backbone.login("physician")
    patient = register_patient(physician, mrn())
    on_care_team(backbone, patient)
    medication = physician.post(
        f"/v1/patients/{patient}/medications",
        json=METFORMIN,
    ).json()
    physician.post(
        f"/v1/medications/{medication['id']}/change", json={"dose": 1000, "reason": "HbA1c high"}
    )
    physician.get(f"/v1/patients/{patient}/chart", params={"min_position": medication["position"]})

    history = backbone.login("compliance").get(f"/v1/patients/{patient}/history")
    changes_only = backbone.login("compliance").get(
        f"/v1/patients/{patient}/history", params={"event_type": "medication.changed"}
    )

    assert history.status_code == 200, history.text
    events = history.json()["events"]
    types = [e["event_type"] for e in events]
    assert types[0] == "patient.registered" and "chart.viewed" in types
    change = changes_only.json()["events"]
    assert len(change) == 1
    assert change[0]["changes"]["dose"] == {"before": 500.0, "after": 1000.0}
    assert change[0]["reason"] == "HbA1c high"
    assert change[0]["actor"]["role"] == "physician"
    assert backbone.login("nurse").get(f"/v1/patients/{patient}/history").status_code == 403
