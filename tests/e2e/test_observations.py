"""Body weight and height through the API, on the chart next to the vitals; a per-kg dose
limit checked at the weight; orders and prescriptions naming the open encounter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    Backbone,
    chart_at,
    join_care_team,
    register_patient,
    running_backbone,
    written,
)

pytestmark = pytest.mark.integration

MORPHINE_IV = {
    "drug_code": "7052",
    "drug_name": "morphine",
    "dose_unit": "mg",
    "route": "iv",
    "frequency": "q4h",
}


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("observations"), settings, 600) as running:
        yield running


def test_weight_and_height_are_recorded_normalised_and_shown_on_the_chart(
    backbone: Backbone,
) -> None:
    # given a patient with the nurse and physician on the care team
    physician = backbone.login("physician")
    patient = register_patient(physician, f"OB-{uuid.uuid4().hex[:10]}")
    join_care_team(backbone, patient, "nurse", "physician")
    nurse = backbone.login("nurse")
    path = f"/v1/patients/{patient}/observations"

    # when the nurse records 154 lb and 1.68 m
    weight = written(nurse.post(path, json={"kind": "body_weight", "value": 154, "unit": "lb"}))
    height = written(nurse.post(path, json={"kind": "body_height", "value": 1.68, "unit": "m"}))

    # then they are answered and charted in kg and cm, beside (not inside) the vital signs
    assert (weight["value"], weight["unit"]) == (69.853225, "kg")
    assert (height["value"], height["unit"]) == (168.0, "cm")
    chart = chart_at(physician, patient, height["position"])
    assert chart["latest_weight"]["value"] == pytest.approx(69.853225)
    assert chart["latest_weight"]["unit"] == "kg" and chart["latest_weight"]["at"]
    assert (chart["latest_height"]["value"], chart["latest_height"]["unit"]) == (168.0, "cm")
    assert "body_weight" not in chart["latest_vitals"]

    # and an implausible value or a unit of the other measure is refused as problem+json
    for body in (
        {"kind": "body_weight", "value": 700, "unit": "kg"},
        {"kind": "body_height", "value": 170, "unit": "kg"},
    ):
        answer = nurse.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    # and a pharmacist may not record one
    assert backbone.login("pharmacist").post(path, json=body).status_code == 403


def test_iv_morphine_is_checked_per_kg_at_the_recorded_weight(backbone: Backbone) -> None:
    # given a patient without a recorded weight
    physician = backbone.login("physician")
    patient = register_patient(physician, f"OB-{uuid.uuid4().hex[:10]}")
    join_care_team(backbone, patient, "nurse", "physician")
    prescribe = f"/v1/patients/{patient}/medications"

    # when IV morphine 8 mg is prescribed, then it passes (only "not screened" is recorded)
    written(physician.post(prescribe, json={**MORPHINE_IV, "dose": 8}))

    # but once the patient weighs 50 kg, 8 mg (above 0.1 mg/kg) needs an override reason
    observations = f"/v1/patients/{patient}/observations"
    weight = {"kind": "body_weight", "value": 50, "unit": "kg"}
    written(backbone.login("nurse").post(observations, json=weight))
    refused = physician.post(prescribe, json={**MORPHINE_IV, "dose": 8})
    assert refused.status_code == 422, refused.text
    assert "0.1 mg/kg" in refused.json()["detail"]
    written(physician.post(prescribe, json={**MORPHINE_IV, "dose": 5}))


def test_orders_and_prescriptions_on_the_chart_name_the_open_encounter(
    backbone: Backbone,
) -> None:
    # given a patient admitted under the physician
    physician = backbone.login("physician")
    patient = register_patient(physician, f"OB-{uuid.uuid4().hex[:10]}")
    admission = {
        "encounter_class": "inpatient",
        "location": {"ward": "Medicine"},
        "attending_id": str(backbone.users["physician"]),
    }
    encounter = written(
        backbone.login("front_desk").post(f"/v1/patients/{patient}/encounters", json=admission)
    )["id"]

    # when an order is placed and a drug prescribed through the unchanged routes
    written(
        physician.post(
            f"/v1/patients/{patient}/orders", json={"test_code": "2345-7", "test_name": "Glucose"}
        )
    )
    medication = written(
        physician.post(f"/v1/patients/{patient}/medications", json={**MORPHINE_IV, "dose": 2})
    )

    # then the chart's items carry the encounter
    chart = chart_at(physician, patient, medication["position"])
    assert [o["encounter_id"] for o in chart["pending_orders"]] == [encounter]
    assert [m["encounter_id"] for m in chart["active_medications"]] == [encounter]
    assert chart["latest_weight"] is None


def test_the_pharmacy_queue_screens_per_kg_at_the_weight_it_has_seen(backbone: Backbone) -> None:
    # given an overridden IV morphine order for a 50 kg patient, and one for an unweighed one
    physician = backbone.login("physician")
    pharmacist = backbone.login("pharmacist")
    weighed = register_patient(physician, f"OB-{uuid.uuid4().hex[:10]}")
    unweighed = register_patient(physician, f"OB-{uuid.uuid4().hex[:10]}")
    for patient in (weighed, unweighed):
        join_care_team(backbone, patient, "nurse", "physician")
    weight = {"kind": "body_weight", "value": 50, "unit": "kg"}
    written(backbone.login("nurse").post(f"/v1/patients/{weighed}/observations", json=weight))
    override = {**MORPHINE_IV, "dose": 8, "override_reason": "post-operative pain, senior review"}
    heavy = written(physician.post(f"/v1/patients/{weighed}/medications", json=override))
    plain = written(
        physician.post(f"/v1/patients/{unweighed}/medications", json={**MORPHINE_IV, "dose": 4})
    )

    def alerts(medication: dict[str, Any]) -> list[str] | None:
        queue = pharmacist.get(
            "/v1/pharmacy/queue", params={"min_position": medication["position"], "limit": 200}
        )
        if queue.status_code == 503:
            return None
        assert queue.status_code == 200, queue.text
        found = [i for i in queue.json() if i["medication_id"] == medication["id"]]
        return found[0]["alerts"] if found else None

    # then the pharmacist sees the per-kg excess, and the unweighed order as not screened
    assert wait_until(lambda: alerts(heavy) is not None, 30, 0.2)
    assert any("0.1 mg/kg" in alert for alert in alerts(heavy) or []), alerts(heavy)
    assert wait_until(lambda: alerts(plain) is not None, 30, 0.2)
    assert any("without a recorded body weight" in a for a in alerts(plain) or []), alerts(plain)
