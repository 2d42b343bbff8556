"""Departments as a client sees them: the pharmacy queue and the physician's inbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    AMOXICILLIN,
    Backbone,
    join_care_team,
    register_patient,
    running_backbone,
)
from tests.integration.contract_reader import ContractReader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("departments"), settings, 900) as running:
        yield running


def treated_patient(backbone: Backbone) -> str:
    physician = backbone.login("physician")
    patient = register_patient(physician, f"D-{uuid.uuid4().hex[:10]}")
    join_care_team(backbone, patient, "physician", "nurse", "pharmacist")
    return str(patient)


def prescribe(backbone: Backbone, patient: str, **drug: Any) -> dict[str, Any]:
    answer = backbone.login("physician").post(f"/v1/patients/{patient}/medications", json=drug)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def queue_item(backbone: Backbone, medication_id: str, position: int) -> dict[str, Any]:
    queue = backbone.login("pharmacist").get(
        "/v1/pharmacy/queue", params={"min_position": position, "limit": 200}
    )
    assert queue.status_code == 200, queue.text
    items = [i for i in queue.json() if i["medication_id"] == medication_id]
    assert len(items) == 1, queue.json()
    return items[0]


WARFARIN = {
    "drug_code": "11289",
    "drug_name": "warfarin",
    "dose": 5,
    "dose_unit": "mg",
    "route": "oral",
    "frequency": "daily",
}
IBUPROFEN = {
    "drug_code": "5640",
    "drug_name": "ibuprofen",
    "dose": 400,
    "dose_unit": "mg",
    "route": "oral",
    "frequency": "tid",
}


def test_a_penicillin_allergic_patients_amoxicillin_comes_with_an_allergy_alert(
    backbone: Backbone,
) -> None:
    patient = treated_patient(backbone)
    backbone.login("nurse").post(
        f"/v1/patients/{patient}/allergies",
        json={"substance": "penicillin", "reaction": "anaphylaxis", "severity": "severe"},
    ).raise_for_status()
    prescribed = prescribe(
        backbone, patient, **AMOXICILLIN, override_reason="no alternative; monitored test dose"
    )

    item = queue_item(backbone, prescribed["id"], prescribed["position"])

    assert any("penicillin" in alert for alert in item["alerts"]), item["alerts"]
    # and the pharmacist sees why the prescriber went past it
    assert item["prescriber_override"] == "no alternative; monitored test dose"


def test_warfarin_then_ibuprofen_alerts_and_a_verification_reaches_chart_and_kafka(
    backbone: Backbone, settings: ServiceSettings
) -> None:
    patient = treated_patient(backbone)
    prescribe(backbone, patient, **WARFARIN)
    ibuprofen = prescribe(backbone, patient, **IBUPROFEN)
    item = queue_item(backbone, ibuprofen["id"], ibuprofen["position"])
    assert any(
        alert.startswith("interaction (major): ibuprofen with warfarin") for alert in item["alerts"]
    )

    reader = ContractReader(settings)
    verified = backbone.login("pharmacist").post(
        f"/v1/pharmacy/queue/{item['item_id']}/verify", json={}
    )
    assert verified.status_code == 201, verified.text
    again = backbone.login("pharmacist").post(
        f"/v1/pharmacy/queue/{item['item_id']}/verify", json={}
    )
    assert again.status_code == 409

    chart = backbone.login("physician").get(
        f"/v1/patients/{patient}/chart", params={"min_position": verified.json()["position"]}
    )
    statuses = {m["drug_name"]: m["verification"] for m in chart.json()["active_medications"]}
    assert statuses == {"warfarin": "pending", "ibuprofen": "verified"}
    arrived = reader.poll_until(
        lambda r: any(e["event_type"] == "pharmacy.verified" for e in r.envelopes),
        30,
        lambda e: e["patient_id"] == patient,
    )
    reader.close()
    assert arrived
    decision = next(e for e in reader.envelopes if e["event_type"] == "pharmacy.verified")
    assert decision["causation_id"] == item["item_id"]


def test_a_verify_after_the_prescriber_changed_the_order_answers_409(backbone: Backbone) -> None:
    patient = treated_patient(backbone)
    prescribed = prescribe(backbone, patient, **WARFARIN)
    item = queue_item(backbone, prescribed["id"], prescribed["position"])
    change = backbone.login("physician").post(
        f"/v1/medications/{prescribed['id']}/change", json={"dose": 2.5, "reason": "INR 3.8"}
    )
    assert change.status_code == 201

    stale = backbone.login("pharmacist").post(
        f"/v1/pharmacy/queue/{item['item_id']}/verify", json={}
    )
    rejected_without_reason = backbone.login("pharmacist").post(
        f"/v1/pharmacy/queue/{item['item_id']}/reject", json={}
    )

    assert stale.status_code == 409, stale.text
    assert rejected_without_reason.status_code == 422
    new_item = queue_item(backbone, prescribed["id"], change.json()["position"])
    assert new_item["kind"] == "changed" and new_item["dose"] == 2.5


def test_a_critical_potassium_reaches_the_ordering_physicians_inbox_and_is_acknowledged(
    backbone: Backbone, settings: ServiceSettings
) -> None:
    patient = treated_patient(backbone)
    physician, lab = backbone.login("physician"), backbone.login("lab_tech")
    order = physician.post(
        f"/v1/patients/{patient}/orders",
        json={"test_code": "2823-3", "test_name": "Potassium", "priority": "stat"},
    ).json()
    backbone.login("nurse").post(f"/v1/orders/{order['id']}/specimen", json={}).raise_for_status()
    results = lab.post(
        f"/v1/orders/{order['id']}/results",
        json={
            "results": [
                {
                    "code": "2823-3",
                    "name": "Potassium",
                    "value": 7.4,
                    "unit": "mmol/L",
                    "reference_low": 3.5,
                    "reference_high": 5.1,
                }
            ]
        },
    )
    assert results.json()["results"][0]["flag"] == "HH"

    inbox = physician.get("/v1/inbox", params={"min_position": results.json()["position"]})
    items = [i for i in inbox.json() if i["order_id"] == order["id"]]
    assert len(items) == 1 and items[0]["flag"] == "HH"
    assert backbone.login("pharmacist").get("/v1/inbox").status_code == 403

    reader = ContractReader(settings)
    ack = physician.post(f"/v1/inbox/{items[0]['item_id']}/ack")
    assert ack.status_code == 201, ack.text
    arrived = reader.poll_until(
        lambda r: any(e["event_type"] == "result.acknowledged" for e in r.envelopes),
        30,
        lambda e: e["patient_id"] == patient,
    )
    reader.close()
    assert arrived
    after = physician.get("/v1/inbox", params={"min_position": ack.json()["position"]})
    assert all(i["item_id"] != items[0]["item_id"] for i in after.json())


def test_two_person_erasure_purges_the_chart_and_the_departments(backbone: Backbone) -> None:
    patient = treated_patient(backbone)
    prescribed = prescribe(backbone, patient, **WARFARIN)
    queue_item(backbone, prescribed["id"], prescribed["position"])
    compliance, admin = backbone.login("compliance"), backbone.login("admin")
    body = {"legal_basis": "GDPR art. 17", "reason": "patient request"}
    read = backbone.login("nurse").get(f"/v1/patients/{patient}/chart")
    assert read.status_code == 200, read.text

    requested = compliance.post(f"/v1/admin/patients/{patient}/erase", json=body)
    same_person = compliance.post(f"/v1/admin/patients/{patient}/erase", json=body)
    approved = admin.post(f"/v1/admin/patients/{patient}/erase", json=body)

    assert requested.status_code == 202 and requested.json()["status"] == "pending_approval"
    assert same_person.status_code == 409
    assert approved.status_code == 201 and approved.json()["status"] == "erased"
    assert backbone.login("physician").get(f"/v1/patients/{patient}/chart").status_code == 410
    answer = compliance.get(f"/v1/patients/{patient}/history")
    assert answer.status_code == 200, answer.text
    history = answer.json()["events"]
    assert [e["event_type"] for e in history][-1] == "patient.erased"
    assert all(e["erased"] for e in history if e["event_type"] == "medication.prescribed")

    def purged() -> bool:
        queue = backbone.login("pharmacist").get("/v1/pharmacy/queue", params={"limit": 200}).json()
        return all(item["patient_id"] != patient for item in queue)

    assert wait_until(purged, 30, 0.2)
    # who read the erased patient stays answerable: a pseudonymous row, no free text
    log = compliance.get("/v1/audit/access", params={"patient_id": patient}).json()
    assert (str(backbone.users["nurse"]), "chart.viewed") in {
        (row["user_id"], row["event_type"]) for row in log
    }
