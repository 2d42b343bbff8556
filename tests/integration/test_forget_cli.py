"""`backbone forget` as operators run it: two people, each named, on the real store."""

from __future__ import annotations

import subprocess
from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.domain.aggregates import patients
from events.domain.errors import PatientErasedError
from events.settings import StoreSettings
from tests.cli import backbone_on
from tests.integration.test_store_postgres import register
from tests.unit.conftest import account

pytestmark = pytest.mark.integration


def forget(
    store_settings: StoreSettings, patient: UUID, operator: str
) -> subprocess.CompletedProcess[str]:
    argv = ["forget", str(patient), "--reason", "patient's request", "--operator", operator]
    return backbone_on(store_settings, *argv)


def test_an_erasure_from_the_cli_needs_a_second_operator_and_names_both(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    # given a patient and two operators (compliance and admin) and a clerk
    patient = register(pg_store, "MRN-F1")
    first = account(pg_store, "privacy.officer", "compliance")
    second = account(pg_store, "it.admin", "admin")
    account(pg_store, "desk.clerk", "front_desk")

    # when a clerk, then the first operator (twice), then a second operator run it
    clerk = forget(store_settings, patient, "desk.clerk")
    requested = forget(store_settings, patient, "privacy.officer")
    again = forget(store_settings, patient, "privacy.officer")
    still_there = pg_store.load(patient, patients.evolve)
    approved = forget(store_settings, patient, "it.admin")

    # then only the second person's call erases, and the log names each of them
    assert clerk.returncode == 2 and "needs one of: admin, compliance" in clerk.stderr
    assert requested.returncode == 0 and "a second operator" in requested.stdout
    assert again.returncode == 1 and "second person must approve" in again.stderr
    assert still_there is not None
    assert approved.returncode == 0 and f"erased {patient}" in approved.stdout, approved.stderr
    with pytest.raises(PatientErasedError):
        pg_store.load(patient, patients.evolve)
    actors = {
        header.event_type: header.actor.user_id
        for page in pg_store.event_log.headers()
        for header in page
        if header.event_type in ("erasure.requested", "patient.erased")
    }
    assert actors == {"erasure.requested": first, "patient.erased": second}
