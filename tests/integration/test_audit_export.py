"""`backbone audit export` as compliance runs it, against the real store."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from events.application import ClinicalStore
from events.commands.access import RecordChartView
from events.commands.medications import ChangeMedication
from events.settings import StoreSettings
from tests.cli import backbone_on
from tests.integration.test_store_postgres import amoxicillin, register
from tests.unit.conftest import NURSE, account, ctx

pytestmark = pytest.mark.integration


def export(store_settings: StoreSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return backbone_on(store_settings, "audit", "export", *args)


def test_a_patients_changes_and_reads_export_as_csv_and_a_users_as_jsonl(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    patient, other = register(pg_store, "MRN-X1"), register(pg_store, "MRN-X2")
    medication = pg_store.prescribe(ctx(), amoxicillin(patient)).id
    pg_store.change_medication(ctx(reason="renal"), ChangeMedication(medication, dose=250))
    pg_store.record_chart_view(ctx(NURSE), RecordChartView(patient, "chart", "treatment", False))
    pg_store.record_chart_view(ctx(NURSE), RecordChartView(other, "chart", "treatment", False))

    officer = account(pg_store, "audit.officer", "compliance")
    account(pg_store, "clerk", "billing")
    as_officer = ("--operator", "audit.officer")
    by_patient = export(store_settings, "--patient", str(patient), "--format", "csv", *as_officer)
    by_user = export(store_settings, "--user", str(NURSE.user_id), "--format", "jsonl", *as_officer)
    refused = export(store_settings, "--format", "csv", *as_officer)
    not_compliance = export(store_settings, "--patient", str(patient), "--operator", "clerk")

    assert by_patient.returncode == 0, by_patient.stderr
    rows = list(csv.DictReader(io.StringIO(by_patient.stdout)))
    assert [r["event_type"] for r in rows] == [
        "patient.registered",
        "medication.prescribed",
        "medication.changed",
        "chart.viewed",
    ]
    assert rows[2]["reason"] == "renal" and json.loads(rows[2]["changes"])["dose"]["after"] == 250
    assert rows[3]["log"] == "access" and rows[3]["role"] == "nurse"
    assert "audit export: 4 events" in by_patient.stderr

    lines = [json.loads(line) for line in by_user.stdout.splitlines()]
    assert {line["patient_id"] for line in lines} == {str(patient), str(other)}
    assert all(line["user_id"] == str(NURSE.user_id) for line in lines)
    assert refused.returncode == 2
    assert all(line["role"] == "nurse" for line in lines)
    # a billing clerk may not take the trail out; each export that ran is itself audited
    assert not_compliance.returncode == 2 and "needs one of: compliance" in not_compliance.stderr
    exports = [
        logged.event
        for page in pg_store.event_log.pages(types={"audit.read"})
        for logged in page.events
        if logged.event is not None
    ]
    assert [(e.actor.user_id, e.payload.model_dump()["what"]) for e in exports] == [
        (officer, "export"),
        (officer, "export"),
    ]
    assert exports[0].payload.model_dump()["patient_id"] == patient
