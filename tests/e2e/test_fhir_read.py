"""FHIR R4 reads as an EHR would make them: metadata, read and search of every kind with
every search parameter, ``$everything``, and the chart's access rules on each route.

One patient's record is written through ``/v1`` (admission, allergy, vitals, weight and
height, a glucose order with its specimen and result, a prescription and a dose given);
every resource the endpoint answers is validated against the official R4 JSON Schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    Backbone,
    join_care_team,
    register_patient,
    running_backbone,
    written,
)
from tests.fhir_schema import assert_valid, assert_vital_signs

pytestmark = pytest.mark.integration

FHIR = "/fhir/R4"
LOINC = "http://loinc.org"
GLUCOSE = "2345-7"
# What the record below holds, per resource type.
EXPECTED = {
    "Patient": 1,
    "Encounter": 1,
    "AllergyIntolerance": 1,
    "ServiceRequest": 1,
    "Specimen": 1,
    "Observation": 7,  # heart rate, blood pressure, temperature, SpO2, weight, height, glucose
    "DiagnosticReport": 1,
    "MedicationRequest": 1,
    "MedicationAdministration": 1,
}


@dataclass
class Record:
    patient: str
    mrn: str


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("fhir-read"), settings, 600) as running:
        yield running


def bundle_of(answer: httpx.Response) -> list[dict[str, Any]]:
    """The resources of a searchset Bundle, each checked against the R4 schema."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert_valid(bundle)
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]


def outcome(answer: httpx.Response, status: int) -> str:
    """The diagnostics of an OperationOutcome that must have this status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body = answer.json()
    assert_valid(body)
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(i.get("diagnostics", "") for i in body["issue"])


@pytest.fixture(scope="module")
def record(backbone: Backbone) -> Record:
    """Given a patient admitted under the physician, with a whole record written via /v1."""
    desk, nurse = backbone.login("front_desk"), backbone.login("nurse")
    physician, lab = backbone.login("physician"), backbone.login("lab_tech")
    mrn = f"FH-{uuid.uuid4().hex[:10]}"
    patient = str(register_patient(desk, mrn))
    admission = {
        "encounter_class": "inpatient",
        "location": {"ward": "Cardiology", "room": "12", "bed": "B"},
        "attending_id": str(backbone.users["physician"]),
    }
    written(desk.post(f"/v1/patients/{patient}/encounters", json=admission))
    join_care_team(backbone, patient, "nurse")
    allergy = {"substance": "penicillin", "reaction": "hives", "severity": "moderate"}
    written(physician.post(f"/v1/patients/{patient}/allergies", json=allergy))
    vitals = {"heart_rate": 128, "systolic_bp": 150, "diastolic_bp": 95, "temperature_c": 37.2}
    written(nurse.post(f"/v1/patients/{patient}/vitals", json={**vitals, "spo2": 97}))
    for kind, value, unit in (("body_weight", 72.5, "kg"), ("body_height", 170, "cm")):
        body = {"kind": kind, "value": value, "unit": unit}
        written(nurse.post(f"/v1/patients/{patient}/observations", json=body))
    order = {"test_code": GLUCOSE, "test_name": "Glucose", "priority": "routine"}
    order_id = written(physician.post(f"/v1/patients/{patient}/orders", json=order))["id"]
    nurse.post(f"/v1/orders/{order_id}/specimen", json={}).raise_for_status()
    result = {"code": GLUCOSE, "name": "Glucose", "value": 182, "unit": "mg/dL"}
    result |= {"reference_low": 70, "reference_high": 105}
    written(lab.post(f"/v1/orders/{order_id}/results", json={"results": [result]}))
    medication = written(physician.post(f"/v1/patients/{patient}/medications", json=METFORMIN))
    given = {"dose": 500, "override_reason": "first dose before pharmacy verification"}
    written(nurse.post(f"/v1/medications/{medication['id']}/administrations", json=given))

    def projected() -> bool:
        answer = physician.get(f"{FHIR}/Patient/{patient}/$everything")
        if answer.status_code != 200:
            return False
        types = [e["resource"]["resourceType"] for e in answer.json().get("entry", [])]
        return all(types.count(name) == n for name, n in EXPECTED.items())

    assert wait_until(projected, 60, 0.3), physician.get(f"{FHIR}/Patient/{patient}/$everything")
    return Record(patient, mrn)


def test_metadata_lists_each_kind_with_its_search_parameters_and_needs_no_token(
    backbone: Backbone,
) -> None:
    answer = backbone.client().get(f"{FHIR}/metadata")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/fhir+json"
    )
    statement = answer.json()
    assert_valid(statement)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(EXPECTED) | {"AuditEvent"} == set(resources)
    assert {"patient", "code", "date", "category", "_lastUpdated"} <= {
        p["name"] for p in resources["Observation"]["searchParam"]
    }
    assert {"identifier", "family", "birthdate"} <= {
        p["name"] for p in resources["Patient"]["searchParam"]
    }


def test_every_kind_is_searched_by_patient_and_read_by_id(
    backbone: Backbone, record: Record
) -> None:
    physician = backbone.login("physician")
    for name, count in EXPECTED.items():
        param = "_id" if name == "Patient" else "patient"
        found = bundle_of(physician.get(f"{FHIR}/{name}", params={param: record.patient}))
        assert [r["resourceType"] for r in found] == [name] * count, name
        for resource in found:
            read = physician.get(f"{FHIR}/{name}/{resource['id']}")
            assert read.status_code == 200, read.text
            assert read.json() == resource
            assert resource["meta"]["lastUpdated"]
            if name != "Patient":
                reference = resource.get("subject") or resource.get("patient")
                assert reference == {"reference": f"Patient/{record.patient}"}, name


def test_vital_signs_follow_the_profile_and_labs_carry_their_flag(
    backbone: Backbone, record: Record
) -> None:
    physician = backbone.login("physician")
    vitals = bundle_of(
        physician.get(
            f"{FHIR}/Observation", params={"patient": record.patient, "category": "vital-signs"}
        )
    )
    for observation in vitals:
        assert_vital_signs(observation)
    codes = {o["code"]["coding"][0]["code"]: o for o in vitals}
    assert set(codes) == {"8867-4", "85354-9", "8310-5", "2708-6", "29463-7", "8302-2"}
    panel = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in codes["85354-9"]["component"]
    }
    assert panel["8480-6"]["value"] == 150 and panel["8462-4"]["value"] == 95
    assert codes["29463-7"]["valueQuantity"]["code"] == "kg"

    labs = bundle_of(
        physician.get(
            f"{FHIR}/Observation",
            params={"subject": f"Patient/{record.patient}", "code": f"{LOINC}|{GLUCOSE}"},
        )
    )
    assert len(labs) == 1
    assert labs[0]["valueQuantity"]["value"] == 182
    assert labs[0]["interpretation"][0]["coding"][0]["code"] == "H"
    assert labs[0]["referenceRange"][0]["high"]["value"] == 105
    assert labs[0]["basedOn"][0]["reference"].startswith("ServiceRequest/")


def test_search_parameters_filter_and_pages_follow_next_links(
    backbone: Backbone, record: Record
) -> None:
    physician = backbone.login("physician")
    search = f"{FHIR}/Observation"
    mine = {"patient": record.patient}
    assert len(bundle_of(physician.get(search, params={**mine, "category": "laboratory"}))) == 1
    assert bundle_of(physician.get(search, params={**mine, "code": f"{LOINC}|0000-0"})) == []
    assert len(bundle_of(physician.get(search, params={**mine, "date": "ge2000-01-01"}))) == 7
    assert bundle_of(physician.get(search, params={**mine, "date": "lt2000-01-01"})) == []
    assert len(bundle_of(physician.get(search, params={**mine, "_lastUpdated": "gt2000"}))) == 7
    assert len(bundle_of(physician.get(search, params={**mine, "status": "final"}))) == 7
    orders = f"{FHIR}/ServiceRequest"
    assert len(bundle_of(physician.get(orders, params={**mine, "status": "completed"}))) == 1
    medications = f"{FHIR}/MedicationRequest"
    assert len(bundle_of(physician.get(medications, params={**mine, "status": "active"}))) == 1
    assert bundle_of(physician.get(medications, params={**mine, "status": "stopped"})) == []

    seen: list[str] = []
    answer = physician.get(search, params={**mine, "_count": 3})
    while True:
        page, bundle = bundle_of(answer), answer.json()
        seen += [r["id"] for r in page]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        assert len(page) == 3
        parts = urlsplit(following[0])
        answer = physician.get(f"{parts.path}?{parts.query}")
    assert len(seen) == len(set(seen)) == 7


def test_patients_are_found_by_identifier_name_and_birth_date(
    backbone: Backbone, record: Record
) -> None:
    desk = backbone.login("front_desk")
    by_mrn = bundle_of(desk.get(f"{FHIR}/Patient", params={"identifier": record.mrn}))
    assert [p["id"] for p in by_mrn] == [record.patient]
    assert by_mrn[0]["name"][0]["family"] == "Testperson"
    both = {"family": "testper", "birthdate": "1975-05-05", "identifier": record.mrn}
    assert [p["id"] for p in bundle_of(desk.get(f"{FHIR}/Patient", params=both))] == [
        record.patient
    ]
    other_day = {"birthdate": "1975-05-06", "identifier": record.mrn}
    assert bundle_of(desk.get(f"{FHIR}/Patient", params=other_day)) == []
    outcome(backbone.login("admin").get(f"{FHIR}/Patient", params={"identifier": record.mrn}), 403)


def test_bad_searches_are_operation_outcomes_naming_what_is_wrong(
    backbone: Backbone, record: Record
) -> None:
    physician = backbone.login("physician")
    mine = {"patient": record.patient}
    assert "colour" in outcome(
        physician.get(f"{FHIR}/Observation", params={**mine, "colour": "x"}), 400
    )
    assert "_sort" in outcome(
        physician.get(f"{FHIR}/Observation", params={**mine, "_sort": "date"}), 400
    )
    assert "patient" in outcome(physician.get(f"{FHIR}/Observation"), 400)
    assert "Claim" in outcome(physician.get(f"{FHIR}/Claim", params=mine), 404)
    outcome(physician.get(f"{FHIR}/Observation/{uuid.uuid4()}"), 404)
    outcome(physician.get(f"{FHIR}/Observation/not-an-id"), 404)
    outcome(backbone.client().get(f"{FHIR}/Patient/{record.patient}"), 401)


def test_everything_gathers_the_record_and_takes_type_and_since(
    backbone: Backbone, record: Record
) -> None:
    physician = backbone.login("physician")
    everything = f"{FHIR}/Patient/{record.patient}/$everything"
    found = bundle_of(physician.get(everything))
    assert sorted(r["resourceType"] for r in found) == sorted(
        name for name, n in EXPECTED.items() for _ in range(n)
    )
    only = bundle_of(physician.get(everything, params={"_type": "Patient,Encounter"}))
    assert sorted(r["resourceType"] for r in only) == ["Encounter", "Patient"]
    assert bundle_of(physician.get(everything, params={"_since": "2999-01-01T00:00:00Z"})) == []
    assert "_count" in outcome(physician.get(everything, params={"_count": 5}), 400)


def test_off_the_care_team_every_route_is_forbidden_until_break_glass(
    backbone: Backbone, record: Record
) -> None:
    pharmacist, compliance = backbone.login("pharmacist"), backbone.login("compliance")
    reads = [
        f"{FHIR}/Patient/{record.patient}",
        f"{FHIR}/Patient/{record.patient}/$everything",
        f"{FHIR}/Observation?patient={record.patient}",
        f"{FHIR}/MedicationRequest?patient={record.patient}",
    ]
    for path in reads:
        outcome(pharmacist.get(path), 403)

    granted = pharmacist.post(
        f"/v1/patients/{record.patient}/break-glass", json={"reason": "covering the ward tonight"}
    )
    assert granted.status_code == 201, granted.text
    for path in reads:
        assert pharmacist.get(path, headers={"X-Purpose-Of-Use": "emergency"}).status_code == 200

    log = compliance.get("/v1/audit/access", params={"patient_id": record.patient}).json()
    mine = [
        entry
        for entry in log
        if entry["user_id"] == str(backbone.users["pharmacist"]) and entry["section"] == "fhir"
    ]
    assert len(mine) >= len(reads) and all(e["break_glass"] for e in mine), mine
    assert {e["purpose"] for e in mine} == {"emergency"}
