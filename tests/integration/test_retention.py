"""Retention as compliance runs it: report, dry run, legal hold, apply — on the real store."""

from __future__ import annotations

import json
import subprocess

import pytest

from events.application import ClinicalStore
from events.commands.patients import ErasePatient
from events.domain.aggregates import patients
from events.domain.errors import PatientErasedError
from events.settings import StoreSettings
from tests.cli import backbone_on
from tests.integration.test_store_postgres import register
from tests.unit.conftest import account, ctx

pytestmark = pytest.mark.integration


def retention(
    store_settings: StoreSettings, *args: str, years: float
) -> subprocess.CompletedProcess[str]:
    areas = ("patients", "orders", "results", "medications", "observations", "access")
    periods = json.dumps(dict.fromkeys(areas, years))
    return backbone_on(store_settings, "retention", *args, BACKBONE_RETENTION_YEARS=periods)


def reported(answer: subprocess.CompletedProcess[str]) -> dict[str, bool]:
    return {
        row["patient_id"]: row["legal_hold"] for row in map(json.loads, answer.stdout.splitlines())
    }


def test_expired_patients_are_reported_held_ones_kept_and_the_rest_erased(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    expired, held, gone = (register(pg_store, f"MRN-R{i}") for i in range(3))
    pg_store.forget(ctx(reason="earlier request"), ErasePatient(gone, "GDPR art. 17"))
    officer = account(pg_store, "records.officer", "compliance")
    as_officer = ("--operator", "records.officer")

    keep_all = retention(store_settings, "report", years=10)
    hold = retention(
        store_settings, "hold", str(held), "--reason", "litigation 2026-114", *as_officer, years=0
    )
    report = retention(store_settings, "report", years=0)
    dry_run = retention(store_settings, "apply", "--dry-run", *as_officer, years=0)
    still_there = pg_store.load(expired, patients.evolve)
    nobody = retention(store_settings, "apply", "--operator", "nobody", years=0)
    applied = retention(store_settings, "apply", *as_officer, years=0)

    assert keep_all.returncode == 0 and reported(keep_all) == {}
    assert hold.returncode == 0
    assert reported(report) == {str(expired): False, str(held): True}
    assert reported(dry_run) == {str(expired): False}
    assert still_there is not None
    assert nobody.returncode == 2 and "no backbone account named 'nobody'" in nobody.stderr
    assert applied.returncode == 0, applied.stderr
    assert "erased 1 patients, 1 on legal hold" in applied.stderr
    with pytest.raises(PatientErasedError):
        pg_store.load(expired, patients.evolve)
    # the erasure names the officer who ran the policy, not a shared system actor
    erasure = [
        header
        for page in pg_store.event_log.headers()
        for header in page
        if header.event_type == "patient.erased"
    ]
    assert erasure[-1].actor.user_id == officer
    assert pg_store.load(held, patients.evolve) is not None
