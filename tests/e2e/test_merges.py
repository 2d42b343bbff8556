"""Patient merges through the API: registration merges a duplicate record into the survivor,
reads of either answer the survivor's chart with both records' data behind the survivor's
care team, the merged record refuses new writes, and an unmerge gives each record back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    Backbone,
    chart_at,
    join_care_team,
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
    with running_backbone(tmp_path_factory.mktemp("merges"), settings, 600) as running:
        yield running


def test_a_merge_joins_two_records_for_reading_and_an_unmerge_splits_them_again(
    backbone: Backbone,
) -> None:
    # given two records of one person: prescriptions on the survivor, an allergy and vitals
    # on the duplicate; the pharmacist is on the survivor's care team only
    desk = backbone.login("front_desk")
    tag = uuid.uuid4().hex[:8].upper()
    survivor = str(register_patient(desk, f"MS-{tag}"))
    duplicate = str(register_patient(desk, f"MD-{tag}"))
    join_care_team(backbone, survivor, "physician", "nurse", "pharmacist")
    join_care_team(backbone, duplicate, "nurse")
    physician, nurse = backbone.login("physician"), backbone.login("nurse")
    pharmacist = backbone.login("pharmacist")
    written(physician.post(f"/v1/patients/{survivor}/medications", json=METFORMIN))
    allergy = {"substance": "penicillin", "reaction": "hives", "severity": "severe"}
    written(nurse.post(f"/v1/patients/{duplicate}/allergies", json=allergy))
    written(nurse.post(f"/v1/patients/{duplicate}/vitals", json={"heart_rate": 71}))
    refused(pharmacist.get(f"/v1/patients/{duplicate}/chart"), 403)

    # when the front desk merges the duplicate into the survivor
    body = {"merged_id": duplicate, "reason": "duplicate registration in ED"}
    refused(nurse.post(f"/v1/patients/{survivor}/merge", json=body), 403)
    merged = written(desk.post(f"/v1/patients/{survivor}/merge", json=body))
    assert merged["id"] == survivor

    # then a read through the duplicate answers the survivor's chart with both records,
    # for the survivor's care team
    chart = chart_at(pharmacist, duplicate, merged["position"])
    assert chart["patient"]["patient_id"] == survivor
    assert chart["survivor_id"] == survivor and chart["merged_ids"] == [duplicate]
    assert [a["substance"] for a in chart["allergies"]] == ["penicillin"]
    assert chart["allergy_status"] == "recorded"
    assert [m["drug_name"] for m in chart["active_medications"]] == ["metformin"]
    assert chart["latest_vitals"]["heart_rate"]["value"] == 71
    own = chart_at(physician, survivor, merged["position"])
    assert own["survivor_id"] is None and own["merged_ids"] == [duplicate]
    assert own["allergies"] == chart["allergies"]
    # and the chart as of now, replayed from the store, agrees
    now = datetime.now(UTC).isoformat()
    replayed = physician.get(f"/v1/patients/{duplicate}/chart", params={"as_of": now})
    assert replayed.status_code == 200, replayed.text
    for field in ("patient", "allergies", "active_medications", "survivor_id", "merged_ids"):
        assert replayed.json()[field] == chart[field], field

    # and the history of either record holds both records' events in store order, and the
    # reads recorded against the survivor
    compliance = backbone.login("compliance")
    history = compliance.get(f"/v1/patients/{duplicate}/history", params={"page_size": 500})
    assert history.status_code == 200, history.text
    events = history.json()["events"]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert [e["event_type"] for e in events].count("patient.registered") == 2
    assert "allergy.recorded" in {e["event_type"] for e in events}
    assert "medication.prescribed" in {e["event_type"] for e in events}
    reads = [e for e in events if e["event_type"] == "chart.viewed"]
    assert str(backbone.users["pharmacist"]) in {e["actor"]["user_id"] for e in reads}

    # and the duplicate refuses new writes, naming the survivor (409)
    detail = refused(nurse.post(f"/v1/patients/{duplicate}/vitals", json={"spo2": 97}), 409)
    assert survivor in detail
    # and merging again, or into the merged record, is refused by the rules
    assert "already merged" in refused(desk.post(f"/v1/patients/{survivor}/merge", json=body), 422)
    inverse = {"merged_id": survivor, "reason": "the other way"}
    refused(desk.post(f"/v1/patients/{duplicate}/merge", json=inverse), 422)

    # and a search of the duplicate's MRN says whom it is merged into, and finds that record
    found = desk.get("/v1/patients", params={"mrn": f"MD-{tag}"})
    assert found.status_code == 200, found.text
    assert [(p["patient_id"], p["merged_into"]) for p in found.json()] == [
        (duplicate, survivor),
        (survivor, None),
    ]

    # when the merge is undone
    undone = written(desk.post(f"/v1/patients/{survivor}/unmerge", json=body))
    assert undone["id"] == duplicate

    # then each record reads as its own again: the survivor's team no longer sees the other
    refused(pharmacist.get(f"/v1/patients/{duplicate}/chart"), 403)
    alone = chart_at(physician, survivor, undone["position"])
    assert alone["merged_ids"] == [] and alone["allergies"] == []
    theirs = chart_at(nurse, duplicate, undone["position"])
    assert theirs["patient"]["patient_id"] == duplicate and theirs["survivor_id"] is None
    assert [a["substance"] for a in theirs["allergies"]] == ["penicillin"]
    written(nurse.post(f"/v1/patients/{duplicate}/vitals", json={"spo2": 97}))
    # and an unmerge of a merge no longer in force is refused
    refused(desk.post(f"/v1/patients/{survivor}/unmerge", json=body), 422)
