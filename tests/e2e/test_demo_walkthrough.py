"""`backbone demo`, the README's three-step walk-through and docs/compliance.md, run as pasted."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.local_stack.stack import LocalStack
from services.settings import REPO_ROOT, ServiceSettings
from tests.e2e.harness import running_backbone

pytestmark = pytest.mark.integration


def doc_block(path: str, heading: str) -> str:
    """The first ``bash`` code block after ``heading`` in the document at ``path``."""
    document = (REPO_ROOT / path).read_text()
    assert heading in document, f"{path} has no {heading!r} section"
    section = document.split(heading, 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def readme_walkthrough() -> str:
    block = doc_block("README.md", "## Try it")
    # What the tests replace with their own API and CA: the walk-through names both.
    assert "API=https://127.0.0.1:8000" in block and "CA=.data/tls/ca.pem" in block, block
    return block


def compliance_walkthrough() -> str:
    """docs/compliance.md's commands, pasted after the README's walk-through."""
    return doc_block("docs/compliance.md", "## Replay, history and erasure")


def run_demo(env: dict[str, str], patients: int) -> subprocess.CompletedProcess[str]:
    """``backbone demo`` as ``make run`` runs it; fails the test if it fails."""
    demo = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--patients", str(patients)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return demo


def test_the_demo_loads_through_the_api_and_the_readme_walkthrough_works(
    stack: LocalStack, settings: ServiceSettings, tmp_path: Path
) -> None:
    with running_backbone(tmp_path, settings, 900) as backbone:
        data_dir = tmp_path / "data" / ".data"
        env = {**backbone.env, "BACKBONE_DATA_DIR": str(data_dir)}
        demo = run_demo(env, 3)
        assert "3 patients loaded" in demo.stdout

        credentials_file = data_dir / "demo" / "credentials.json"
        credentials = json.loads(credentials_file.read_text())
        assert set(credentials) == {
            "front_desk",
            "nurse",
            "physician",
            "pharmacist",
            "lab_tech",
            "billing",
            "compliance",
            "admin",
        }
        assert stat.S_IMODE(os.stat(credentials_file).st_mode) == 0o600

        script = (
            readme_walkthrough()
            .replace("https://127.0.0.1:8000", backbone.url)
            .replace("CA=.data/tls/ca.pem", f"CA={backbone.ca_file}")
            .replace(".venv/bin/python", sys.executable)
        )
        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=data_dir.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert walk.returncode == 0, walk.stderr
    assert '"mrn": "DEMO-000001"' in walk.stdout
    assert '"purpose": "ward round"' in walk.stdout


def test_the_compliance_doc_commands_work_when_pasted_after_the_readme_walkthrough(
    stack: LocalStack, settings: ServiceSettings, tmp_path: Path
) -> None:
    with running_backbone(tmp_path, settings, 900) as backbone:
        data_dir = tmp_path / "data" / ".data"
        env = {**backbone.env, "BACKBONE_DATA_DIR": str(data_dir)}
        run_demo(env, 2)
        script = (
            (readme_walkthrough() + compliance_walkthrough())
            .replace("https://127.0.0.1:8000", backbone.url)
            .replace("CA=.data/tls/ca.pem", f"CA={backbone.ca_file}")
            .replace(".venv/bin/python", sys.executable)
            .replace(".venv/bin/backbone", f"{sys.executable} -m services.cli")
        )
        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=data_dir.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    assert walk.returncode == 0, walk.stderr
    assert '"status":"pending_approval"' in walk.stdout.replace(" ", "")
    assert '"status":"erased"' in walk.stdout.replace(" ", "")
    assert walk.stdout.strip().endswith("410")


def test_the_readme_hl7_step_admits_and_results_a_patient_over_mllp(
    stack: LocalStack, settings: ServiceSettings, tmp_path: Path
) -> None:
    with running_backbone(tmp_path, settings, 900) as backbone:
        data_dir = tmp_path / "data" / ".data"
        env = {**backbone.env, "BACKBONE_DATA_DIR": str(data_dir)}
        run_demo(env, 1)
        backbone.wait_for_hl7()
        script = (
            (readme_walkthrough() + doc_block("README.md", "## From the hospital's systems"))
            .replace("https://127.0.0.1:8000", backbone.url)
            .replace("CA=.data/tls/ca.pem", f"CA={backbone.ca_file}")
            .replace(".venv/bin/python", sys.executable)
            .replace(".venv/bin/backbone hl7 send", f"{sys.executable} -m services.cli hl7 send")
            .replace(" hl7 send $HL7/", f" hl7 send --port {backbone.hl7_port} $HL7/")
        )
        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=data_dir.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    assert walk.returncode == 0, walk.stdout[-2000:] + walk.stderr
    assert "MSA|AA|README-A01" in walk.stdout
    assert "MSA|AA|README-ORU" in walk.stdout
    assert "ward: CARDIO" in walk.stdout
    assert re.search(r"^Glucose 182(\.0)? mg/dL flag: H$", walk.stdout, re.MULTILINE), walk.stdout


def test_the_readme_fhir_step_reads_metadata_everything_and_imports_synthea(
    stack: LocalStack, settings: ServiceSettings, tmp_path: Path
) -> None:
    with running_backbone(tmp_path, settings, 900) as backbone:
        data_dir = tmp_path / "data" / ".data"
        env = {**backbone.env, "BACKBONE_DATA_DIR": str(data_dir)}
        run_demo(env, 1)
        script = (
            (readme_walkthrough() + doc_block("README.md", "## For EHRs and apps: FHIR R4"))
            .replace("https://127.0.0.1:8000", backbone.url)
            .replace("CA=.data/tls/ca.pem", f"CA={backbone.ca_file}")
            .replace(".venv/bin/python", sys.executable)
            .replace(".venv/bin/backbone", f"{sys.executable} -m services.cli")
            .replace(" tests/data/", f" {REPO_ROOT}/tests/data/")
        )
        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=data_dir.parent,
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert walk.returncode == 0, walk.stdout[-2000:] + walk.stderr[-2000:]
    lines = walk.stdout.splitlines()
    served = next(line for line in lines if line.startswith("Patient "))
    assert {"Observation", "MedicationRequest", "AuditEvent"} <= set(served.split())
    # the demo patient's record: demographics, allergies, vitals, orders, medications
    assert any(
        {"AllergyIntolerance", "MedicationRequest", "Observation", "Patient"} <= set(line.split())
        for line in lines
    ), walk.stdout
    # the Synthea bundle: every one of its 556 resources accounted for, 400 of them imported
    assert "556 resources: 400 imported, 0 already imported, 156 not mappable" in walk.stdout
