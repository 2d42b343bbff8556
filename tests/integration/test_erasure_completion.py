"""Erasure always finishes, on the real store: a half-done erasure is completed by a retry
(API path or ``backbone forget``), legal bases the API accepts are recorded, and an erased
patient's MRN registered again never answers with the old id."""

from __future__ import annotations

from uuid import UUID

import pytest
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.patients import ErasePatient
from events.domain.aggregates import patients
from events.domain.envelope import Actor
from events.domain.errors import ClinicalRuleViolation, DuplicateMRN, PatientErasedError
from events.domain.payloads.patients import PatientErased
from events.settings import StoreSettings
from services.api.routes.admin import ErasureCreate
from tests.cli import backbone_on
from tests.integration.test_store_postgres import register
from tests.unit.conftest import account, ctx

pytestmark = pytest.mark.integration


class KeyStoreDown(Exception):
    """The data-key table could not be reached just after the erasure was committed."""


def erased_events(store: ClinicalStore, patient: UUID) -> list[int]:
    return [
        e.position for e in store.event_log.of_patient(patient) if e.event_type == "patient.erased"
    ]


def half_erase(
    store: ClinicalStore, patient: UUID, monkeypatch: pytest.MonkeyPatch
) -> tuple[UUID, UUID]:
    """Request and approve an erasure whose key destruction fails after the commit."""
    requester = account(store, "privacy.officer", "compliance")
    approver = account(store, "it.admin", "admin")
    first = ctx(Actor(user_id=requester, role="compliance"), reason="patient's request")
    store.request_erasure(first, ErasePatient(patient, "GDPR art. 17"))

    def unreachable(_: UUID) -> None:
        raise KeyStoreDown

    with monkeypatch.context() as patched:
        patched.setattr(store, "destroy_key", unreachable)
        with pytest.raises(KeyStoreDown):
            second = ctx(Actor(user_id=approver, role="admin"), reason="approved")
            store.request_erasure(second, ErasePatient(patient, "GDPR art. 17"))
    return requester, approver


def test_a_retried_request_completes_a_half_done_erasure(
    pg_store: ClinicalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an approved erasure whose key destruction failed after patient.erased committed
    patient = register(pg_store, "MRN-E1")
    requester, _ = half_erase(pg_store, patient, monkeypatch)
    half_done = pg_store.load(patient, patients.evolve)

    # when the request is sent again (by either person)
    retried, erased = pg_store.request_erasure(
        ctx(Actor(user_id=requester, role="compliance"), reason="patient's request"),
        ErasePatient(patient, "GDPR art. 17"),
    )

    # then the key is gone and the answer is the erasure's, recorded once
    assert half_done is not None and half_done.erased  # readable: the key had survived
    assert erased and retried.id == patient
    assert retried.position == erased_events(pg_store, patient)[0]
    assert len(erased_events(pg_store, patient)) == 1
    with pytest.raises(PatientErasedError):
        pg_store.load(patient, patients.evolve)


def test_backbone_forget_completes_a_half_done_erasure(
    pg_store: ClinicalStore, store_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = register(pg_store, "MRN-E2")
    half_erase(pg_store, patient, monkeypatch)

    argv = ["forget", str(patient), "--reason", "finish it", "--operator", "privacy.officer"]
    done = backbone_on(store_settings, *argv)

    assert done.returncode == 0, done.stderr
    assert f"erased {patient} at position {erased_events(pg_store, patient)[0]}" in done.stdout
    with pytest.raises(PatientErasedError):
        pg_store.load(patient, patients.evolve)


def test_a_legal_basis_the_api_accepts_is_recorded_by_the_approval(
    pg_store: ClinicalStore,
) -> None:
    # given the longest legal basis the API accepts
    basis = "GDPR art. 17 request; " + "b" * 478
    body = ErasureCreate(legal_basis=basis, reason="patient's request")
    patient = register(pg_store, "MRN-E3")
    requester = account(pg_store, "privacy.officer", "compliance")
    approver = account(pg_store, "it.admin", "admin")

    # when one person requests and another approves
    pg_store.request_erasure(
        ctx(Actor(user_id=requester, role="compliance"), reason=body.reason),
        ErasePatient(patient, body.legal_basis),
    )
    result, erased = pg_store.request_erasure(
        ctx(Actor(user_id=approver, role="admin"), reason="approved"),
        ErasePatient(patient, body.legal_basis),
    )

    # then the erasure is recorded with the whole basis
    assert len(basis) == 500 and erased
    recorded = [e for e in pg_store.event_log.of_patient(patient) if e.position == result.position]
    assert recorded and recorded[0].event is not None
    payload = recorded[0].event.payload
    assert isinstance(payload, PatientErased) and payload.legal_basis.startswith(basis)


def test_a_longer_legal_basis_is_refused_up_front_naming_the_field(
    pg_store: ClinicalStore,
) -> None:
    patient = register(pg_store, "MRN-E4")
    requester = account(pg_store, "privacy.officer", "compliance")

    with pytest.raises(ValidationError, match="legal_basis"):
        ErasureCreate(legal_basis="x" * 501, reason="patient's request")  # the API's 422
    with pytest.raises(ClinicalRuleViolation) as refused:
        pg_store.request_erasure(
            ctx(Actor(user_id=requester, role="compliance"), reason="request"),
            ErasePatient(patient, "x" * 501),
        )
    assert refused.value.field == "legal_basis"
    assert ErasureCreate(legal_basis="GDPR", reason="r" * 1000)  # the store's note limit
    with pytest.raises(ValidationError, match="reason"):
        ErasureCreate(legal_basis="GDPR", reason="r" * 1001)


def test_an_erased_patients_mrn_registered_again_never_answers_with_the_old_id(
    pg_store: ClinicalStore,
) -> None:
    # given a patient registered, then erased
    old = register(pg_store, "MRN-E5")
    pg_store.forget(ctx(reason="erasure request"), ErasePatient(old, "GDPR art. 17"))

    # when the same MRN is registered again, then once more
    new = register(pg_store, "mrn-e5", family="Mensah")
    with pytest.raises(DuplicateMRN) as duplicate:
        register(pg_store, "MRN-E5")

    # then the new registration has a fresh id, and a duplicate names only the live one
    assert new != old
    assert pg_store.patient_id_for_mrn("MRN-E5") == new
    current = pg_store.load(new, patients.evolve)
    assert current is not None and current.family_name == "Mensah"
    assert duplicate.value.existing_id == new and str(old) not in str(duplicate.value)


def test_an_mrn_whose_erasure_is_half_done_gets_a_fresh_id_too(
    pg_store: ClinicalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = register(pg_store, "MRN-E6")
    half_erase(pg_store, old, monkeypatch)

    new = register(pg_store, "MRN-E6")

    assert new != old
