"""FHIR import as a user would do it: ``backbone fhir import`` of the Synthea bundle, again
(nothing new stored), the patient's chart through the API; and ``POST /fhir/R4`` with
transaction Bundles, by a physician on the care team and by a nurse who is not."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.domain.rules.results import flag_value, parse_value
from events.settings import StoreSettings
from services.bootstrap import Backbone as Services
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, chart_at, join_care_team, register_patient, running_backbone

pytestmark = pytest.mark.integration

BUNDLE = Path(__file__).resolve().parents[1] / "data" / "fhir" / "cfhir.json"
MRN = "41166989975d4d17b9de17f94cb3eec1"  # the bundle's MR identifier, as its hex digits
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("fhir-import"), settings, 600) as running:
        yield running


def fhir_import(backbone: Backbone, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "fhir", "import", *args],
        env=backbone.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def head(backbone: Backbone) -> int:
    """The store's head position, read through the store's own read API."""
    return int(_log_of(backbone, lambda log: log.head()))


def types_after(backbone: Backbone, position: int) -> list[str]:
    """The types of the events stored after ``position``, in store order (clear headers)."""
    return list(
        _log_of(
            backbone,
            lambda log: [h.event_type for page in log.headers(position) for h in page],
        )
    )


def _log_of(backbone: Backbone, read: Any) -> Any:
    """What ``read`` answers from the running backbone's event log."""
    env = backbone.env
    settings = StoreSettings(
        master_key_file=Path(env["BACKBONE_MASTER_KEY_FILE"]),
        store_name=env["BACKBONE_STORE_NAME"],
        witness_dir=Path(env["BACKBONE_WITNESS_DIR"]),
    )
    services = Services(store_settings=settings)
    try:
        return read(services.store.event_log)
    finally:
        services.close()


def patient_with_mrn(client: httpx.Client, mrn: str) -> str:
    """The patient's id, once the projections have registered them (bounded wait)."""
    found: list[Any] = []

    def projected() -> bool:
        answer = client.get("/v1/patients", params={"mrn": mrn})
        found[:] = answer.json() if answer.status_code == 200 else []
        return bool(found)

    assert wait_until(projected, 30, 0.2), f"no patient with MRN {mrn}"
    return str(found[0]["patient_id"])


def latest_value(code: str, component: str | None = None) -> float:
    """The bundle's latest value of a vital sign (or of a component of a panel)."""
    entries = [e["resource"] for e in json.loads(BUNDLE.read_text())["entry"]]
    found = [
        r
        for r in entries
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == code
    ]
    latest = max(found, key=lambda r: datetime.fromisoformat(r["effectiveDateTime"]))
    if component is None:
        return float(latest["valueQuantity"]["value"])
    part = next(c for c in latest["component"] if c["code"]["coding"][0]["code"] == component)
    return float(part["valueQuantity"]["value"])


def bundle_types() -> Counter[str]:
    entries = json.loads(BUNDLE.read_text())["entry"]
    return Counter(e["resource"]["resourceType"] for e in entries)


def test_the_synthea_bundle_is_imported_once_and_shows_on_the_chart(backbone: Backbone) -> None:
    doctor = backbone.username("physician")

    # when the physician imports the Synthea bundle
    first = fhir_import(backbone, str(BUNDLE), "--operator", doctor, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)

    # then every resource is accounted for, per type
    counts = report["counts"]
    assert {kind: sum(row.values()) for kind, row in counts.items()} == dict(bundle_types())
    assert counts["Patient"]["imported"] == 1
    assert counts["Encounter"]["imported"] == 28
    assert counts["DiagnosticReport"]["imported"] == 33
    assert counts["MedicationRequest"]["imported"] == 10
    assert counts["Observation"] == {"imported": 328, "already imported": 0, "not mappable": 46}
    for kind in ("Claim", "ExplanationOfBenefit", "Immunization", "Condition", "CareTeam"):
        assert report["reasons"][kind] == {f"{kind} is not imported": bundle_types()[kind]}
    assert "BMI (39156-5)" in " ".join(report["reasons"]["Observation"])
    stored = head(backbone)

    # when it is imported again, with the table this time
    again = fhir_import(backbone, str(BUNDLE), "--operator", doctor)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 imported, 400 already imported, 156 not mappable" in again.stdout
    # then nothing new is stored
    assert head(backbone) == stored

    # and the chart shows the encounters, the latest vitals and the recent labs with flags
    physician = backbone.login("physician")
    patient = patient_with_mrn(physician, MRN)
    chart = chart_at(physician, patient, stored)
    assert len(chart["encounters"]) == 28
    assert chart["encounter"] is None  # every Synthea visit has ended
    # (the backbone keeps a measurement to 6 decimal places)
    assert chart["latest_weight"]["value"] == pytest.approx(latest_value("29463-7"), abs=1e-6)
    assert chart["latest_height"]["value"] == pytest.approx(latest_value("8302-2"), abs=1e-6)
    systolic = chart["latest_vitals"]["systolic_bp"]["value"]
    assert systolic == pytest.approx(latest_value("55284-4", "8480-6"), abs=1e-6)
    results = chart["recent_results"]
    assert results
    for result in results:
        value = result["value"] if result["value"] is not None else result["value_text"]
        expected = flag_value(result["code"], parse_value(value), result["unit"], None, None)
        assert result["flag"] == expected


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in entries
        ],
    }


def weight(patient: str, kg: float, rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2024-05-01T10:00:00+00:00",
        "valueQuantity": {"value": kg, "unit": "kg", "code": "kg"},
    }


def test_a_transaction_bundle_posted_by_the_care_team_is_written_and_read_back(
    backbone: Backbone,
) -> None:
    # given a registered patient with the physician on the care team
    patient = str(register_patient(backbone.login("front_desk"), f"FH-{uuid.uuid4().hex[:8]}"))
    join_care_team(backbone, patient, "physician")
    physician = backbone.login("physician")
    tag = uuid.uuid4().hex[:8]
    prescription = {
        "resourceType": "MedicationRequest",
        "id": f"m{tag}",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": "2024-05-01T10:05:00+00:00",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "310965",
                    "display": "Ibuprofen 200 MG Oral Tablet",
                }
            ]
        },
    }

    # when the physician posts a weight and a prescription as a transaction
    bundle = transaction(weight(patient, 71.5, f"w{tag}"), prescription)
    answer = physician.post("/fhir/R4", json=bundle)

    # then each entry is answered, in order, as created
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    body = answer.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    location = body["entry"][1]["response"]["location"]
    assert location.startswith("MedicationRequest/")

    # and the chart shows them: ibuprofen screened as its ingredient, the weight
    chart = chart_at(physician, patient, head(backbone))
    drugs = {m["medication_id"]: m for m in chart["active_medications"]}
    ordered = drugs[location.removeprefix("MedicationRequest/")]
    assert (ordered["drug_code"], ordered["dose"], ordered["dose_unit"]) == ("5640", 200, "mg")
    assert chart["latest_weight"]["value"] == 71.5

    # and posting it again stores nothing new: every entry is already there
    before = head(backbone)
    repeat = physician.post("/fhir/R4", json=bundle)
    assert [e["response"]["status"] for e in repeat.json()["entry"]] == ["200 OK", "200 OK"]
    assert head(backbone) == before


def test_a_clinician_off_the_care_team_gets_a_403_operation_outcome(backbone: Backbone) -> None:
    # given a patient whose care team the nurse is not on
    patient = str(register_patient(backbone.login("front_desk"), f"FX-{uuid.uuid4().hex[:8]}"))
    nurse = backbone.login("nurse")
    before = head(backbone)

    # when the nurse posts their weight
    answer = nurse.post("/fhir/R4", json=transaction(weight(patient, 80, uuid.uuid4().hex)))

    # then the whole transaction is refused with an OperationOutcome, and nothing is written
    assert answer.status_code == 403, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "care team" in outcome["issue"][0]["diagnostics"]
    assert types_after(backbone, before) == ["access.denied"]  # the refusal, nothing clinical

    # and a batch answers the refusal in the entry, with its outcome
    batch = {**transaction(weight(patient, 80, uuid.uuid4().hex)), "type": "batch"}
    answered = nurse.post("/fhir/R4", json=batch).json()
    entry = answered["entry"][0]["response"]
    assert entry["status"].startswith("403")
    assert entry["outcome"]["issue"][0]["code"] == "forbidden"


def test_a_body_that_is_not_a_transaction_bundle_is_refused(backbone: Backbone) -> None:
    physician = backbone.login("physician")
    answer = physician.post("/fhir/R4", json={"resourceType": "Bundle", "type": "collection"})
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"
