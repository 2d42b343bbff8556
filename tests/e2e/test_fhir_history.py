"""FHIR history and AuditEvent as an auditor and a clinician would use them.

A patient's allergy is recorded then resolved, a prescription written then changed with a
reason; ``_history`` shows each change as a version with its Provenance (who, role, why,
when), ``_history/{vid}`` each version as it read. AuditEvent shows who read the record, who
was refused and who broke the glass, to compliance only. Every resource answered is
checked against the official R4 JSON Schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
from tests.fhir_schema import assert_valid

pytestmark = pytest.mark.integration

FHIR = "/fhir/R4"


@dataclass
class Record:
    patient: str
    allergy: str
    medication: str


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("fhir-history"), settings, 600) as running:
        yield running


def fhir_json(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = answer.json()
    assert_valid(body)
    return body


def issue_code(answer: httpx.Response, status: int) -> str:
    body = fhir_json(answer, status)
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["code"])


def _eventually(client: httpx.Client, path: str, check: Any) -> dict[str, Any]:
    seen: list[httpx.Response] = []

    def ready() -> bool:
        seen.append(client.get(path))
        return seen[-1].status_code == 200 and bool(check(seen[-1].json()))

    assert wait_until(ready, 30, 0.2), seen[-1].text
    return fhir_json(seen[-1])


@pytest.fixture(scope="module")
def record(backbone: Backbone) -> Record:
    """Given an allergy recorded by a nurse and resolved by the physician, and a
    prescription changed with a reason, on a patient whose team holds both."""
    desk, nurse = backbone.login("front_desk"), backbone.login("nurse")
    physician = backbone.login("physician")
    patient = str(register_patient(desk, f"FX-{uuid.uuid4().hex[:10]}"))
    join_care_team(backbone, patient, "nurse", "physician")
    allergy = {"substance": "latex", "reaction": "rash", "severity": "mild"}
    allergy_id = written(nurse.post(f"/v1/patients/{patient}/allergies", json=allergy))["id"]
    medication = written(physician.post(f"/v1/patients/{patient}/medications", json=METFORMIN))
    _eventually(physician, f"{FHIR}/AllergyIntolerance/{allergy_id}", lambda _: True)
    resolved = {"status": "inactive", "reason": "no reaction on re-exposure"}
    physician.post(
        f"/v1/patients/{patient}/allergies/{allergy_id}/status", json=resolved
    ).raise_for_status()
    change = {"frequency": "daily", "reason": "adherence"}
    physician.post(f"/v1/medications/{medication['id']}/change", json=change).raise_for_status()
    _eventually(
        physician,
        f"{FHIR}/AllergyIntolerance/{allergy_id}",
        lambda r: r["clinicalStatus"]["coding"][0]["code"] == "inactive",
    )
    _eventually(
        physician,
        f"{FHIR}/MedicationRequest/{medication['id']}",
        lambda r: "daily" in str(r.get("dosageInstruction")),
    )
    return Record(patient, allergy_id, medication["id"])


def versions_and_provenance(bundle: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(version, its Provenance) pairs of a history Bundle, newest first."""
    assert bundle["type"] == "history"
    resources = [entry["resource"] for entry in bundle["entry"]]
    pairs = list(zip(resources[::2], resources[1::2], strict=True))
    assert all(p["resourceType"] == "Provenance" for _, p in pairs)
    return pairs


def test_an_allergy_history_has_each_change_with_who_why_and_when(
    backbone: Backbone, record: Record
) -> None:
    bundle = fhir_json(
        backbone.login("compliance").get(f"{FHIR}/AllergyIntolerance/{record.allergy}/_history")
    )

    pairs = versions_and_provenance(bundle)
    assert bundle["total"] == 2 and [v["meta"]["versionId"] for v, _ in pairs] == ["2", "1"]
    (resolved, changed_by), (recorded, recorded_by) = pairs
    assert resolved["clinicalStatus"]["coding"][0]["code"] == "inactive"
    assert recorded["clinicalStatus"]["coding"][0]["code"] == "active"
    assert changed_by["target"] == [
        {"reference": f"AllergyIntolerance/{record.allergy}/_history/2"}
    ]
    assert changed_by["reason"] == [{"text": "no reaction on re-exposure"}]
    assert changed_by["agent"][0]["role"] == [{"text": "physician"}]
    assert changed_by["agent"][0]["who"]["identifier"]["value"] == str(backbone.users["physician"])
    assert changed_by["activity"]["coding"][0]["code"] == "UPDATE"
    assert recorded_by["agent"][0]["role"] == [{"text": "nurse"}]
    assert recorded_by["activity"]["coding"][0]["code"] == "CREATE"
    assert "reason" not in recorded_by
    assert recorded_by["recorded"] <= changed_by["recorded"]
    assert recorded_by["occurredDateTime"] and changed_by["occurredDateTime"]
    assert resolved["meta"]["lastUpdated"] == changed_by["recorded"]


def test_each_version_reads_as_it_was(backbone: Backbone, record: Record) -> None:
    compliance = backbone.login("compliance")
    path = f"{FHIR}/MedicationRequest/{record.medication}/_history"

    first = compliance.get(f"{path}/1")
    second = fhir_json(compliance.get(f"{path}/2"))

    assert first.headers["etag"] == 'W/"1"'
    assert "daily" not in str(fhir_json(first)["dosageInstruction"])
    assert "daily" in str(second["dosageInstruction"]) and second["meta"]["versionId"] == "2"
    pairs = versions_and_provenance(fhir_json(compliance.get(path)))
    assert pairs[0][1]["reason"] == [{"text": "adherence"}]
    assert issue_code(compliance.get(f"{path}/3"), 404) == "not-found"
    assert issue_code(compliance.get(f"{path}/zero"), 404) == "not-found"


def test_a_patient_history_starts_at_the_registration(backbone: Backbone, record: Record) -> None:
    bundle = fhir_json(backbone.login("physician").get(f"{FHIR}/Patient/{record.patient}/_history"))

    (version, proof), *_ = reversed(versions_and_provenance(bundle))
    assert version["meta"]["versionId"] == "1" and version["id"] == record.patient
    assert proof["activity"]["text"] == "patient.registered"
    assert proof["agent"][0]["role"] == [{"text": "front_desk"}]


def test_history_is_for_the_roles_of_the_v1_history_and_an_unknown_id_is_404(
    backbone: Backbone, record: Record
) -> None:
    path = f"{FHIR}/AllergyIntolerance/{record.allergy}/_history"

    for role in ("nurse", "pharmacist", "front_desk", "billing", "lab_tech", "admin"):
        assert issue_code(backbone.login(role).get(path), 403) == "forbidden", role
    assert backbone.client().get(path).status_code == 401
    unknown = backbone.login("compliance").get(f"{FHIR}/AllergyIntolerance/{uuid.uuid4()}/_history")
    assert issue_code(unknown, 404) == "not-found"
    with_param = backbone.login("compliance").get(path, params={"_since": "2020-01-01"})
    assert issue_code(with_param, 400) == "not-supported"


def test_off_the_care_team_history_is_refused_until_the_glass_is_broken_and_all_is_audited(
    backbone: Backbone,
) -> None:
    desk, nurse = backbone.login("front_desk"), backbone.login("nurse")
    physician, compliance = backbone.login("physician"), backbone.login("compliance")
    patient = str(register_patient(desk, f"FY-{uuid.uuid4().hex[:10]}"))
    join_care_team(backbone, patient, "nurse")
    allergy = {"substance": "egg", "reaction": "hives", "severity": "moderate"}
    allergy_id = written(nurse.post(f"/v1/patients/{patient}/allergies", json=allergy))["id"]
    _eventually(nurse, f"{FHIR}/AllergyIntolerance/{allergy_id}", lambda _: True)
    path = f"{FHIR}/AllergyIntolerance/{allergy_id}/_history"

    assert issue_code(physician.get(path), 403) == "forbidden"
    glass = {"reason": "unconscious in the emergency department"}
    written(physician.post(f"/v1/patients/{patient}/break-glass", json=glass))
    opened = fhir_json(physician.get(path, headers={"X-Purpose-Of-Use": "emergency"}))

    assert opened["total"] == 1
    # The physician's read (of the history), refusal and break-glass; the nurse's read of
    # the allergy is in the log too, under another agent.
    wanted = {("110110", "0"), ("110113", "4"), ("110113", "0")}
    by_physician = f"{FHIR}/AuditEvent?patient={patient}&agent={backbone.users['physician']}"

    def kinds_of(bundle: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (e["resource"]["type"]["code"], e["resource"]["outcome"])
            for e in bundle.get("entry", [])
        }

    events = _eventually(compliance, by_physician, lambda b: wanted <= kinds_of(b))
    found = [e["resource"] for e in events["entry"]]
    refusal = next(a for a in found if a["outcome"] == "4")
    assert refusal["entity"][-1]["description"].startswith("GET /fhir/R4/")
    assert refusal["agent"][0]["who"]["identifier"]["value"] == str(backbone.users["physician"])
    read = next(a for a in found if a["type"]["code"] == "110110")
    assert {"type": "section", "valueString": "history"} in read["entity"][0]["detail"]
    assert any(p.get("text") == "emergency" for p in read["purposeOfEvent"])
    assert any(c["code"] == "BTG" for p in read["purposeOfEvent"] for c in p.get("coding", []))


def test_audit_events_search_by_agent_and_date_and_read_by_id(
    backbone: Backbone, record: Record
) -> None:
    compliance = backbone.login("compliance")
    backbone.login("physician").get(f"{FHIR}/Patient/{record.patient}").raise_for_status()
    nurse = str(backbone.users["nurse"])
    physician = str(backbone.users["physician"])
    query = f"{FHIR}/AuditEvent?patient={record.patient}&agent={physician}"

    by_physician = _eventually(compliance, query, lambda b: b.get("entry"))
    by_nurse = fhir_json(compliance.get(f"{FHIR}/AuditEvent", params={"agent": nurse}))
    in_future = fhir_json(compliance.get(f"{query}&date=ge2100-01-01"))

    agents = {
        e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in by_physician["entry"]
    }
    assert agents == {physician}
    assert all(
        e["resource"]["agent"][0]["who"]["identifier"]["value"] == nurse
        for e in by_nurse.get("entry", [])
    )
    assert in_future.get("entry", []) == []
    one = by_physician["entry"][0]["resource"]
    assert fhir_json(compliance.get(f"{FHIR}/AuditEvent/{one['id']}")) == one
    assert issue_code(compliance.get(f"{FHIR}/AuditEvent/{uuid.uuid4()}"), 404) == "not-found"
    unknown = compliance.get(f"{FHIR}/AuditEvent", params={"outcome": "4"})
    assert issue_code(unknown, 400) == "not-supported"


def test_audit_events_are_for_compliance_only(backbone: Backbone, record: Record) -> None:
    for role in ("physician", "nurse", "pharmacist", "front_desk", "billing", "lab_tech", "admin"):
        answer = backbone.login(role).get(f"{FHIR}/AuditEvent", params={"patient": record.patient})
        assert issue_code(answer, 403) == "forbidden", role
    assert backbone.client().get(f"{FHIR}/AuditEvent").status_code == 401
