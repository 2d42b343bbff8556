"""FHIR Bulk Data export end to end: kick-off, polling, manifest, NDJSON files, cancel, and
who may do it; an erased patient's resources are not exported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from projections.engine.database import read_pool
from projections.settings import ProjectionSettings
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, join_care_team, register_patient, running_backbone
from tests.fhir_schema import assert_valid

pytestmark = pytest.mark.integration

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
EXPORT = "/fhir/R4/Patient/$export"


@dataclass(frozen=True)
class Population:
    """What this module's backbone holds: patients with two vital-sign Observations each
    (heart rate, blood pressure), and one more patient, erased."""

    kept: tuple[UUID, ...]
    erased: UUID


@pytest.fixture(scope="module")
def exports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fhir-exports") / "exports"


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack,
    settings: ServiceSettings,
    tmp_path_factory: pytest.TempPathFactory,
    exports_dir: Path,
) -> Iterator[Backbone]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BACKBONE_FHIR_EXPORT_DIR", str(exports_dir))
        with running_backbone(tmp_path_factory.mktemp("fhir-export"), settings, 600) as running:
            yield running


@pytest.fixture(scope="module")
def population(backbone: Backbone) -> Population:
    physician = backbone.login("physician")
    patients = [register_patient(physician, f"FX-{uuid.uuid4().hex[:10]}") for _ in range(3)]
    nurse = backbone.login("nurse")
    for patient in patients:
        join_care_team(backbone, patient, "nurse", "physician")
        vitals = {"heart_rate": 72, "systolic_bp": 121, "diastolic_bp": 79}
        answer = nurse.post(f"/v1/patients/{patient}/vitals", json=vitals)
        assert answer.status_code == 201, answer.text
    erased = patients[-1]
    body = {"legal_basis": "GDPR art. 17", "reason": "patient request"}
    asked = backbone.login("compliance").post(f"/v1/admin/patients/{erased}/erase", json=body)
    assert asked.status_code == 202, asked.text
    approved = backbone.login("admin").post(f"/v1/admin/patients/{erased}/erase", json=body)
    assert approved.status_code == 201 and approved.json()["status"] == "erased", approved.text
    return Population(tuple(patients[:-1]), erased)


def kick_off(client: httpx.Client, params: dict[str, str], path: str = EXPORT) -> str:
    """Start an export; its status URL."""
    answer = client.get(path, params=params, headers=ASYNC)
    assert answer.status_code == 202, answer.text
    return answer.headers["Content-Location"]


def completed(client: httpx.Client, status_url: str) -> dict[str, Any]:
    """Poll the status URL (bounded) until the manifest; every answer before it is 202
    with its progress."""
    answers: list[httpx.Response] = []

    def done() -> bool:
        answer = client.get(status_url)
        answers.append(answer)
        if answer.status_code == 202:
            assert answer.headers["X-Progress"] and int(answer.headers["Retry-After"]) > 0
        return answer.status_code != 202

    assert wait_until(done, 90, 0.2), answers[-1].headers
    assert answers[-1].status_code == 200, answers[-1].text
    manifest: dict[str, Any] = answers[-1].json()
    return manifest


def outcome(answer: httpx.Response, status: int) -> str:
    """The diagnostics of an OperationOutcome answer that must have this status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(str(i.get("diagnostics", "")) for i in body["issue"])


def exports_audited(backbone: Backbone) -> list[int]:
    """The ``rows`` of each export the compliance user is recorded to have made."""
    settings = ProjectionSettings(
        read_schema=backbone.env["BACKBONE_READ_SCHEMA"],
        store_name=backbone.env["BACKBONE_STORE_NAME"],
    )
    pool = read_pool(settings, max_size=1)
    try:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT rows FROM audit_reads WHERE what = 'export' AND user_id = %s "
                "ORDER BY position",
                (backbone.users["compliance"],),
            ).fetchall()
    finally:
        pool.close()
    return [row[0] for row in rows]


def test_compliance_exports_patients_and_observations_without_the_erased_one(
    backbone: Backbone, population: Population
) -> None:
    # given patients with vital signs, one of them erased, and what was audited so far
    compliance = backbone.login("compliance")
    before = exports_audited(backbone)

    # when compliance exports Patient and Observation and polls until it is done
    status_url = kick_off(compliance, {"_type": "Patient,Observation"})
    assert "/fhir/R4/" in status_url
    manifest = completed(compliance, status_url)

    # then the manifest lists each type with as many resources as were recorded
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].startswith(f"{backbone.url}{EXPORT}?_type=Patient")
    counts = {f["type"]: f["count"] for f in manifest["output"]}
    assert counts == {"Patient": len(population.kept), "Observation": 2 * len(population.kept)}

    # and each file holds one valid resource of its type a line, none of the erased patient's
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["output"]:
        answer = compliance.get(entry["url"])
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        assert str(population.erased) not in answer.text
        lines = answer.text.splitlines()
        assert len(lines) == entry["count"]
        found[entry["type"]] = [json.loads(line) for line in lines]
        for resource in found[entry["type"]]:
            assert resource["resourceType"] == entry["type"]
            assert_valid(resource)
    assert {p["id"] for p in found["Patient"]} == {str(p) for p in population.kept}
    subjects = {o["subject"]["reference"] for o in found["Observation"]}
    assert subjects == {f"Patient/{p}" for p in population.kept}

    # and the export was audited once, with the number of resources it holds
    total = sum(counts.values())
    assert wait_until(lambda: len(exports_audited(backbone)) > len(before), 30, 0.2)
    assert exports_audited(backbone)[len(before) :] == [total]

    # and nobody else may download the files: another role, or no token at all
    url = manifest["output"][0]["url"]
    outcome(backbone.login("physician").get(url), 403)
    assert backbone.client().get(url).status_code == 401


def test_a_system_export_since_the_future_has_no_files(
    backbone: Backbone, population: Population
) -> None:
    compliance = backbone.login("compliance")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    manifest = completed(compliance, kick_off(compliance, {"_since": tomorrow}, "/fhir/R4/$export"))
    assert population.kept and manifest["output"] == []


def test_who_and_what_may_not_export(backbone: Backbone, population: Population) -> None:
    compliance = backbone.login("compliance")
    # a physician may not export, and the refusal is recorded as a denial
    outcome(backbone.login("physician").get(EXPORT, headers=ASYNC), 403)
    denials = compliance.get("/v1/audit/denials", params={"limit": 50}).json()
    # (the recorded template lacks the /fhir/R4 prefix of the included router: lead told)
    assert any(
        d["route"].endswith("/Patient/$export") and d["user_id"] == str(backbone.users["physician"])
        for d in denials
    ), [(d["route"], d["user_id"]) for d in denials]
    # the kick-off must ask for an asynchronous answer
    assert "respond-async" in outcome(compliance.get(EXPORT), 400)
    # a type this server does not serve is named
    refused = compliance.get(EXPORT, params={"_type": "Patient,Spaceship"}, headers=ASYNC)
    assert "Spaceship" in outcome(refused, 400)
    # another user's or an unknown job is not found
    outcome(compliance.get(f"/fhir/R4/$export-status/{uuid.uuid4()}"), 404)
    assert population.kept


def test_a_cancelled_export_is_gone_with_its_files(
    backbone: Backbone, population: Population, exports_dir: Path
) -> None:
    compliance = backbone.login("compliance")
    # given a finished export whose files are on disk
    status_url = kick_off(compliance, {"_type": "Patient"})
    manifest = completed(compliance, status_url)
    job = status_url.rsplit("/", 1)[1]
    assert (exports_dir / job / "Patient.ndjson").is_file()
    assert manifest["output"][0]["count"] == len(population.kept)

    # when it is cancelled
    assert compliance.delete(status_url).status_code == 202

    # then its status and files answer 404 and nothing of it is left on disk
    outcome(compliance.get(status_url), 404)
    outcome(compliance.get(manifest["output"][0]["url"]), 404)
    assert not (exports_dir / job).exists()

    # and an export cancelled while it runs is gone too
    running = kick_off(compliance, {})
    assert compliance.delete(running).status_code == 202
    outcome(compliance.get(running), 404)
    assert not (exports_dir / running.rsplit("/", 1)[1]).exists()
