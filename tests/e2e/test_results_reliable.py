"""Results a clinician can rely on, end to end: non-numeric values and statuses reach the
chart, amendments and corrections reach the inbox, new critical limits flag, and an
unacknowledged critical result escalates to the care team (after a test-shortened time)."""

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
from tests.integration.contract_reader import ContractReader

pytestmark = pytest.mark.integration

ESCALATION_S = 8  # BACKBONE_CRITICAL_ESCALATION_S for this module's processes


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BACKBONE_CRITICAL_ESCALATION_S", str(ESCALATION_S))
        patch.setenv("BACKBONE_CRITICAL_ESCALATION_SWEEP_S", "1")
        folder = tmp_path_factory.mktemp("results")
        with running_backbone(folder, settings, 900) as running:
            yield running


def ordered(backbone: Backbone, code: str, name: str) -> tuple[str, str]:
    """A patient with physician, nurse and pharmacist on the team, and a collected order."""
    physician = backbone.login("physician")
    patient = register_patient(physician, f"R-{uuid.uuid4().hex[:10]}")
    join_care_team(backbone, patient, "physician", "nurse", "pharmacist")
    order = physician.post(
        f"/v1/patients/{patient}/orders", json={"test_code": code, "test_name": name}
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    backbone.login("nurse").post(f"/v1/orders/{order_id}/specimen", json={}).raise_for_status()
    return str(patient), order_id


def report(backbone: Backbone, order_id: str, *results: dict[str, Any]) -> dict[str, Any]:
    answer = backbone.login("lab_tech").post(
        f"/v1/orders/{order_id}/results", json={"results": list(results)}
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def amend(backbone: Backbone, order_id: str, result_id: str, **body: Any) -> httpx.Response:
    return backbone.login("lab_tech").post(
        f"/v1/orders/{order_id}/results/{result_id}/amend", json=body
    )


def chart_results(backbone: Backbone, patient: str, position: int) -> dict[str, Any]:
    chart = backbone.login("physician").get(
        f"/v1/patients/{patient}/chart", params={"min_position": position}
    )
    assert chart.status_code == 200, chart.text
    return {r["result_id"]: r for r in chart.json()["recent_results"]}


def inbox_items(backbone: Backbone, order_id: str, position: int) -> list[dict[str, Any]]:
    answer = backbone.login("physician").get("/v1/inbox", params={"min_position": position})
    assert answer.status_code == 200, answer.text
    return [i for i in answer.json() if i["order_id"] == order_id]


POTASSIUM = {"code": "2823-3", "name": "Potassium", "unit": "mmol/L"}
RANGE = {"reference_low": 3.5, "reference_high": 5.1}


def test_non_numeric_values_are_stored_and_shown_with_their_comparator_and_no_numeric_flag(
    backbone: Backbone,
) -> None:
    patient, order_id = ordered(backbone, "10839-9", "Troponin I")
    troponin = {"code": "10839-9", "name": "Troponin I", "unit": "ng/mL", "reference_high": 0.04}
    written = report(
        backbone,
        order_id,
        {**troponin, "value": "<0.01"},
        {"code": "600-7", "name": "Blood culture", "value": "positive"},
        {"code": "2339-0", "name": "Glucose", "value": ">1000", "unit": "mg/dL"},
        {"code": "2823-3", "name": "Potassium", "value": "<5", "unit": "mmol/L", **RANGE},
    )
    flags = [(r["flag"], r["value_type"], r["comparator"]) for r in written["results"]]
    assert flags == [
        ("N", "numeric", "<"),
        (None, "text", None),
        ("HH", "numeric", ">"),
        (None, "numeric", "<"),  # L or N: ambiguous, so no flag
    ]

    shown = chart_results(backbone, patient, written["position"])
    ids = [r["result_id"] for r in written["results"]]
    assert (shown[ids[0]]["value"], shown[ids[0]]["comparator"]) == (0.01, "<")
    assert shown[ids[0]]["value_text"] == "<0.01" and shown[ids[0]]["flag"] == "N"
    assert shown[ids[1]]["value"] is None and shown[ids[1]]["value_text"] == "positive"
    assert shown[ids[1]]["flag"] is None and shown[ids[1]]["value_type"] == "text"
    assert shown[ids[3]]["flag"] is None and shown[ids[3]]["trend"] is None
    # the unambiguous critical comparator reaches the lab-routing inbox, comparator kept
    (item,) = inbox_items(backbone, order_id, written["position"])
    assert (item["flag"], item["comparator"], item["value_text"]) == ("HH", ">", ">1000")


def test_preliminary_then_final_then_corrected_statuses_show_in_the_chart(
    backbone: Backbone,
) -> None:
    patient, order_id = ordered(backbone, "2823-3", "Potassium")
    written = report(
        backbone, order_id, {**POTASSIUM, **RANGE, "value": 4.1, "status": "preliminary"}
    )
    result_id = written["results"][0]["result_id"]
    assert written["results"][0]["status"] == "preliminary"
    assert chart_results(backbone, patient, written["position"])[result_id]["status"] == (
        "preliminary"
    )

    final = amend(backbone, order_id, result_id, value=4.2, unit="mmol/L", **RANGE)
    assert final.status_code == 201, final.text
    assert final.json()["status"] == "final"
    assert chart_results(backbone, patient, final.json()["position"])[result_id]["status"] == (
        "final"
    )

    without_reason = amend(backbone, order_id, result_id, value=5.6, unit="mmol/L", **RANGE)
    assert without_reason.status_code == 422, without_reason.text
    corrected = amend(
        backbone, order_id, result_id, value=5.6, unit="mmol/L", reason="calibration", **RANGE
    )
    assert corrected.status_code == 201, corrected.text
    shown = chart_results(backbone, patient, corrected.json()["position"])[result_id]
    assert (shown["status"], shown["value"], shown["flag"]) == ("corrected", 5.6, "H")
    assert shown["amended"] is True and shown["original_value"] == 4.1  # first reported


def test_an_amendment_that_turns_a_result_critical_reaches_the_ordering_physicians_inbox(
    backbone: Backbone,
) -> None:
    _, order_id = ordered(backbone, "2823-3", "Potassium")
    written = report(backbone, order_id, {**POTASSIUM, **RANGE, "value": 4.2})
    result_id = written["results"][0]["result_id"]
    assert inbox_items(backbone, order_id, written["position"]) == []

    amended = amend(
        backbone, order_id, result_id, value=7.2, unit="mmol/L", reason="wrong sample", **RANGE
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["flag"] == "HH"

    (item,) = inbox_items(backbone, order_id, amended.json()["position"])
    assert (item["item_id"], item["flag"], item["status"]) == (result_id, "HH", "corrected")
    assert item["value"] == 7.2


def test_a_corrected_critical_result_notifies_again_after_the_first_was_acknowledged(
    backbone: Backbone,
) -> None:
    _, order_id = ordered(backbone, "2823-3", "Potassium")
    written = report(backbone, order_id, {**POTASSIUM, **RANGE, "value": 7.0})
    (item,) = inbox_items(backbone, order_id, written["position"])
    ack = backbone.login("physician").post(f"/v1/inbox/{item['item_id']}/ack")
    assert ack.status_code == 201, ack.text
    assert inbox_items(backbone, order_id, ack.json()["position"]) == []

    corrected = amend(
        backbone,
        order_id,
        item["item_id"],
        value=7.8,
        unit="mmol/L",
        reason="dilution error",
        **RANGE,
    )
    assert corrected.status_code == 201, corrected.text

    (again,) = inbox_items(backbone, order_id, corrected.json()["position"])
    assert again["renotified"] is True and again["value"] == 7.8 and again["flag"] == "HH"


@pytest.mark.parametrize(
    ("code", "name", "value", "unit", "flag"),
    [
        ("2339-0", "Glucose (whole blood)", 30, "mg/dL", "LL"),
        ("6298-4", "Potassium (whole blood)", 7.0, "mmol/L", "HH"),
        ("2947-0", "Sodium (whole blood)", 115, "mmol/L", "LL"),
        ("10839-9", "Troponin I", 1.5, "ng/mL", "HH"),
    ],
)
def test_the_new_critical_limits_flag_and_route_whole_blood_and_troponin_results(
    backbone: Backbone, code: str, name: str, value: float, unit: str, flag: str
) -> None:
    _, order_id = ordered(backbone, code, name)
    written = report(backbone, order_id, {"code": code, "name": name, "value": value, "unit": unit})
    assert written["results"][0]["flag"] == flag
    (item,) = inbox_items(backbone, order_id, written["position"])
    assert item["flag"] == flag


def test_an_unacknowledged_critical_result_escalates_to_the_rest_of_the_care_team(
    backbone: Backbone, settings: ServiceSettings
) -> None:
    patient, order_id = ordered(backbone, "2823-3", "Potassium")
    reader = ContractReader(settings, keys=backbone.key_client())  # payloads opened
    written = report(backbone, order_id, {**POTASSIUM, **RANGE, "value": 2.1})
    result_id = written["results"][0]["result_id"]
    nurse = backbone.login("nurse")

    def escalated_to_nurse() -> list[dict[str, Any]]:
        answer = nurse.get("/v1/inbox/escalations")
        assert answer.status_code == 200, answer.text
        return [i for i in answer.json() if i["item_id"] == result_id]

    # not before the escalation time (the sweep runs every second)
    assert escalated_to_nurse() == []
    assert wait_until(lambda: bool(escalated_to_nurse()), ESCALATION_S + 60, 0.5)
    (item,) = escalated_to_nurse()
    assert item["escalated"] is True and item["escalated_to_you"] is True
    assert item["flag"] == "LL"
    pharmacist = backbone.login("pharmacist").get("/v1/inbox/escalations")
    assert any(i["item_id"] == result_id for i in pharmacist.json())
    # the ordering physician still sees it, now marked escalated
    mine = backbone.login("physician").get("/v1/inbox").json()
    assert any(i["item_id"] == result_id and i["escalated"] for i in mine)

    arrived = reader.poll_until(
        lambda r: any(e["event_type"] == "result.escalated" for e in r.envelopes),
        30,
        lambda e: e["patient_id"] == patient,
    )
    reader.close()
    assert arrived
    event = next(e for e in reader.envelopes if e["event_type"] == "result.escalated")
    notified = {(r["user_id"], r["role"]) for r in event["payload"]["notified"]}
    assert notified == {
        (str(backbone.users["nurse"]), "nurse"),
        (str(backbone.users["pharmacist"]), "pharmacist"),
    }
    assert event["payload"]["result_id"] == result_id
