"""Medication safety as a client sees it: dose limits by route, per day and by age; allergy
status, criticality and "no known allergies" in the chart; a new allergy re-screens the
patient's active drugs into the pharmacy queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import AMOXICILLIN, Backbone, join_care_team, running_backbone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("medsafety"), settings, 900) as running:
        yield running


def patient_born(backbone: Backbone, birth_date: str = "1975-05-05") -> str:
    answer = backbone.login("physician").post(
        "/v1/patients",
        json={
            "mrn": f"S-{uuid.uuid4().hex[:10]}",
            "family_name": "Testperson",
            "given_names": ["Eve"],
            "birth_date": birth_date,
            "sex": "female",
        },
    )
    assert answer.status_code == 201, answer.text
    patient: str = answer.json()["id"]
    join_care_team(backbone, patient, "physician", "nurse", "pharmacist")
    return patient


def prescribe(backbone: Backbone, patient: str, **drug: Any) -> httpx.Response:
    return backbone.login("physician").post(f"/v1/patients/{patient}/medications", json=drug)


def refused_for_override(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert [e["field"] for e in body["errors"]] == ["override_reason"]
    assert any(words in alert for alert in body["alerts"]), body["alerts"]


def chart(backbone: Backbone, patient: str, position: int) -> dict[str, Any]:
    answer = backbone.login("physician").get(
        f"/v1/patients/{patient}/chart", params={"min_position": position}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def record_allergy(backbone: Backbone, patient: str, **allergy: Any) -> dict[str, Any]:
    answer = backbone.login("nurse").post(f"/v1/patients/{patient}/allergies", json=allergy)
    assert answer.status_code == 201, answer.text
    written: dict[str, Any] = answer.json()
    return written


def test_iv_morphine_30_mg_needs_an_override_oral_within_limits_does_not(
    backbone: Backbone,
) -> None:
    patient = patient_born(backbone)
    morphine = {"drug_code": "7052", "drug_name": "morphine", "dose": 30, "dose_unit": "mg"}
    iv = prescribe(backbone, patient, **morphine, route="iv", frequency="q4h")
    refused_for_override(iv, "by the iv route")
    oral = prescribe(backbone, patient, **morphine, route="oral", frequency="q4h")
    assert oral.status_code == 201, oral.text


def test_acetaminophen_1_g_every_4_hours_is_refused_every_6_hours_accepted(
    backbone: Backbone,
) -> None:
    patient = patient_born(backbone)
    drug = {"drug_code": "161", "drug_name": "acetaminophen", "dose": 1, "dose_unit": "g"}
    q4h = prescribe(backbone, patient, **drug, route="oral", frequency="q4h")
    refused_for_override(q4h, "daily dose 6 g")
    q6h = prescribe(backbone, patient, **drug, route="oral", frequency="q6h")
    assert q6h.status_code == 201, q6h.text


def test_citalopram_40_mg_is_refused_for_a_70_year_old_and_accepted_for_a_40_year_old(
    backbone: Backbone,
) -> None:
    drug = {
        "drug_code": "2556",
        "drug_name": "citalopram",
        "dose": 40,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "daily",
    }
    older = prescribe(backbone, patient_born(backbone, "1956-01-10"), **drug)
    refused_for_override(older, "from age 60")
    younger = prescribe(backbone, patient_born(backbone, "1986-01-10"), **drug)
    assert younger.status_code == 201, younger.text


def test_the_chart_tells_no_known_allergies_from_not_recorded_and_shows_criticality(
    backbone: Backbone,
) -> None:
    # given a new patient: nothing recorded yet
    patient = patient_born(backbone)
    nurse = backbone.login("nurse")
    first = chart(backbone, patient, 0)
    assert (first["allergy_status"], first["allergies"]) == ("not_recorded", [])
    # when "no known drug allergies" is stated
    none_known = nurse.post(f"/v1/patients/{patient}/allergies/none-known", json={})
    assert none_known.status_code == 201, none_known.text
    assert chart(backbone, patient, none_known.json()["position"])["allergy_status"] == (
        "no_known_allergies"
    )
    # then an allergy with its criticality replaces it
    written = record_allergy(
        backbone,
        patient,
        substance="sulfa",
        reaction="rash",
        severity="moderate",
        criticality="high",
    )
    body = chart(backbone, patient, written["position"])
    assert body["allergy_status"] == "recorded"
    [allergy] = body["allergies"]
    assert (allergy["status"], allergy["criticality"]) == ("active", "high")
    again = nurse.post(f"/v1/patients/{patient}/allergies/none-known", json={})
    assert again.status_code == 422, again.text


def test_inactive_and_refuted_allergies_do_not_alert_and_show_their_status(
    backbone: Backbone,
) -> None:
    patient = patient_born(backbone)
    nurse = backbone.login("nurse")
    allergy = record_allergy(
        backbone, patient, substance="penicillin", reaction="hives", severity="mild"
    )
    refused_for_override(prescribe(backbone, patient, **AMOXICILLIN), "penicillin")
    status_url = f"/v1/patients/{patient}/allergies/{allergy['id']}/status"
    no_reason = nurse.post(status_url, json={"status": "inactive"})
    assert no_reason.status_code == 422
    inactive = nurse.post(status_url, json={"status": "inactive", "reason": "outgrown"})
    assert inactive.status_code == 201, inactive.text
    assert prescribe(backbone, patient, **AMOXICILLIN).status_code == 201
    body = chart(backbone, patient, inactive.json()["position"])
    assert [a["status"] for a in body["allergies"]] == ["inactive"]
    assert body["allergy_status"] == "not_recorded"

    other = patient_born(backbone)
    latex = record_allergy(
        backbone, other, substance="amoxicillin", reaction="rash", severity="mild"
    )
    refuted = nurse.post(
        f"/v1/patients/{other}/allergies/{latex['id']}/status",
        json={"status": "refuted", "reason": "recorded for the wrong patient"},
    )
    assert refuted.status_code == 201, refuted.text
    assert prescribe(backbone, other, **AMOXICILLIN).status_code == 201
    assert [
        a["status"] for a in chart(backbone, other, refuted.json()["position"])["allergies"]
    ] == ["refuted"]


def test_a_new_penicillin_allergy_puts_the_patients_amoxicillin_back_in_the_pharmacy_queue(
    backbone: Backbone,
) -> None:
    # given a patient on amoxicillin, verified by pharmacy
    patient = patient_born(backbone)
    prescribed = prescribe(backbone, patient, **AMOXICILLIN)
    assert prescribed.status_code == 201, prescribed.text
    medication = prescribed.json()
    pharmacist = backbone.login("pharmacist")

    def items(position: int) -> list[dict[str, Any]]:
        queue = pharmacist.get(
            "/v1/pharmacy/queue", params={"min_position": position, "limit": 200}
        )
        if queue.status_code == 503:  # the pharmacy has not applied the position yet
            return []
        assert queue.status_code == 200, queue.text
        return [i for i in queue.json() if i["medication_id"] == medication["id"]]

    assert wait_until(lambda: bool(items(medication["position"])), 30, 0.2)
    [first] = items(medication["position"])
    verified = pharmacist.post(f"/v1/pharmacy/queue/{first['item_id']}/verify", json={})
    assert verified.status_code == 201, verified.text
    # when a penicillin allergy is recorded
    allergy = record_allergy(
        backbone,
        patient,
        substance="penicillin",
        reaction="anaphylaxis",
        severity="severe",
        criticality="high",
    )
    # then the queue has a re-screen item carrying the allergy alert
    assert wait_until(lambda: bool(items(allergy["position"])), 30, 0.2)
    [rescreen] = items(allergy["position"])
    assert rescreen["kind"] == "allergy_rescreen"
    assert any(a.startswith("allergy to penicillin") for a in rescreen["alerts"]), rescreen
    # and the pharmacist can reject the verified order through it
    rejected = pharmacist.post(
        f"/v1/pharmacy/queue/{rescreen['item_id']}/reject",
        json={"reason": "new penicillin anaphylaxis: contact prescriber"},
    )
    assert rejected.status_code == 201, rejected.text
    meds = chart(backbone, patient, rejected.json()["position"])["active_medications"]
    assert [m["verification"] for m in meds] == ["rejected"]
