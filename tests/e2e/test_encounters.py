"""Encounters through the API: admit, transfer, discharge; the chart shows the open
encounter, then the past one; the attending physician joins the care team."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    Backbone,
    chart_at,
    refused,
    register_patient,
    running_backbone,
    written,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("encounters"), settings, 600) as running:
        yield running


def test_admission_transfer_and_discharge_show_on_the_chart_and_the_attending_joins(
    backbone: Backbone,
) -> None:
    # given a patient registered at the front desk, whose care team is empty
    desk = backbone.login("front_desk")
    patient = register_patient(desk, f"EN-{uuid.uuid4().hex[:10]}")
    physician = backbone.login("physician")
    attending = str(backbone.users["physician"])
    refused(physician.get(f"/v1/patients/{patient}/chart"), 403)

    # when the front desk admits them under the physician
    admission = {
        "encounter_class": "inpatient",
        "location": {"ward": "Cardiology", "room": "12", "bed": "B"},
        "attending_id": attending,
    }
    started = written(desk.post(f"/v1/patients/{patient}/encounters", json=admission))
    encounter = started["id"]

    # then a second open encounter is refused
    second = {**admission, "location": {"ward": "ICU"}}
    detail = refused(desk.post(f"/v1/patients/{patient}/encounters", json=second), 422)
    assert "already has an open encounter" in detail

    # and the attending is on the care team: they read the chart, which shows the stay
    chart = chart_at(physician, patient, started["position"])
    current = chart["encounter"]
    assert current["encounter_id"] == encounter
    assert current["class"] == "inpatient"
    assert current["location"] == {"ward": "Cardiology", "room": "12", "bed": "B"}
    assert current["attending_id"] == attending
    assert current["since"]
    assert chart["encounters"] == []

    # a nurse not on the care team may not move the patient
    move = {"location": {"ward": "ICU", "bed": "4"}}
    refused(backbone.login("nurse").post(f"/v1/encounters/{encounter}/transfer", json=move), 403)

    # when the patient is moved to the ICU, then discharged home
    moved = written(desk.post(f"/v1/encounters/{encounter}/transfer", json=move))
    chart = chart_at(physician, patient, moved["position"])
    assert chart["encounter"]["location"] == {"ward": "ICU", "room": None, "bed": "4"}
    ended = written(desk.post(f"/v1/encounters/{encounter}/end", json={"disposition": "home"}))

    # then the chart has no open encounter and the past one, with its ward; the attending
    # is still on the care team, for the grace period after the discharge
    chart = chart_at(physician, patient, ended["position"])
    assert chart["encounter"] is None
    [past] = chart["encounters"]
    assert past["encounter_id"] == encounter
    assert past["location"]["ward"] == "ICU"
    assert past["disposition"] == "home"
    assert past["ended_at"] and past["started_at"]

    # and a closed encounter cannot be moved or ended again; an unknown one is a 404
    refused(desk.post(f"/v1/encounters/{encounter}/transfer", json=move), 422)
    refused(desk.post(f"/v1/encounters/{encounter}/end", json={"disposition": "home"}), 422)
    refused(desk.post(f"/v1/encounters/{uuid.uuid4()}/end", json={"disposition": "home"}), 404)

    # a new admission may start now that the first one ended
    written(desk.post(f"/v1/patients/{patient}/encounters", json=second))


def test_the_pharmacy_queue_is_filtered_by_the_ward_the_patient_is_on(backbone: Backbone) -> None:
    # given a patient admitted to ward 4B, then a prescription for them
    desk = backbone.login("front_desk")
    patient = register_patient(desk, f"EN-{uuid.uuid4().hex[:10]}")
    admission = {
        "encounter_class": "inpatient",
        "location": {"ward": "4B"},
        "attending_id": str(backbone.users["physician"]),
    }
    written(desk.post(f"/v1/patients/{patient}/encounters", json=admission))
    prescribed = written(
        backbone.login("physician").post(f"/v1/patients/{patient}/medications", json=METFORMIN)
    )

    # when the pharmacist reads the queue of 4B and of another ward
    pharmacist = backbone.login("pharmacist")

    def queue(ward: str) -> list[str]:
        answer = pharmacist.get(
            "/v1/pharmacy/queue",
            params={"ward": ward, "min_position": prescribed["position"], "limit": 200},
        )
        assert answer.status_code == 200, answer.text
        return [item["medication_id"] for item in answer.json()]

    # then the prescription is in 4B's queue (the ward comes on another topic: bounded wait)
    # and not in another ward's
    assert wait_until(lambda: prescribed["id"] in queue("4B"), 15, 0.2)
    assert prescribed["id"] not in queue("5C")
    refused(pharmacist.get("/v1/pharmacy/queue", params={"ward": "4\u0000B"}), 422)


def test_the_care_team_follows_the_patient_from_ward_to_ward(backbone: Backbone) -> None:
    # given the nurse assigned to a ward by an administrator
    admin = backbone.login("admin")
    ward, other_ward = f"W-{uuid.uuid4().hex[:6]}", f"W-{uuid.uuid4().hex[:6]}"
    nurse_id = str(backbone.users["nurse"])
    written(admin.post(f"/v1/admin/wards/{ward}/staff", json={"user_id": nurse_id}))
    staff = admin.get(f"/v1/admin/wards/{ward}/staff").json()
    assert staff == {"ward": ward, "staff": [nurse_id]}
    desk = backbone.login("front_desk")
    patient = register_patient(desk, f"EN-{uuid.uuid4().hex[:10]}")
    nurse = backbone.login("nurse")
    refused(nurse.get(f"/v1/patients/{patient}/chart"), 403)

    # when the patient is admitted to that ward
    admission = {
        "encounter_class": "inpatient",
        "location": {"ward": ward},
        "attending_id": str(backbone.users["physician"]),
    }
    encounter = written(desk.post(f"/v1/patients/{patient}/encounters", json=admission))["id"]

    # then the ward's nurse is on the care team, brought by the encounter, and reads the chart
    def member() -> dict[str, Any] | None:
        members = admin.get(f"/v1/patients/{patient}/care-team").json()
        return next((m for m in members if m["user_id"] == nurse_id), None)

    assert wait_until(lambda: member() is not None, 30, 0.2)
    assert member() == {**(member() or {}), "encounter_id": encounter, "leaves_at": None}
    assert nurse.get(f"/v1/patients/{patient}/chart").status_code == 200

    # when the patient moves to a ward the nurse does not work on
    moved = desk.post(
        f"/v1/encounters/{encounter}/transfer", json={"location": {"ward": other_ward}}
    )
    written(moved)

    # then the nurse leaves after the grace period (24 h by default), and still reads until then
    assert wait_until(lambda: (member() or {}).get("leaves_at") is not None, 30, 0.2)
    assert nurse.get(f"/v1/patients/{patient}/chart").status_code == 200

    # and an administrator cannot put a billing clerk on a ward
    clerk = str(backbone.users["billing"])
    detail = refused(admin.post(f"/v1/admin/wards/{ward}/staff", json={"user_id": clerk}), 422)
    assert "cannot be on a ward" in detail
