"""Master key rotation as an administrator runs it (`backbone keys rotate`), and the id key
that lives apart from the master key so that rotation changes no id."""

from __future__ import annotations

import subprocess
from uuid import UUID

import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from events.application import ClinicalStore
from events.domain.aggregates import patients
from events.domain.errors import PatientErasedError
from events.settings import StoreSettings
from events.store.keys import (
    ID_KEY_PURPOSE,
    NONCE_BYTES,
    Keyring,
    MemoryKeyStore,
    derive_key,
    load_master_key,
)
from services.bootstrap import build_store
from tests.cli import backbone_on
from tests.integration.test_store_postgres import register
from tests.integration.workload import run_workload
from tests.unit.conftest import account

pytestmark = pytest.mark.integration


def rotate(store_settings: StoreSettings, operator: str) -> subprocess.CompletedProcess[str]:
    return backbone_on(store_settings, "keys", "rotate", "--operator", operator)


def events_digest(store_settings: StoreSettings) -> tuple[int, str]:
    table = sql.Identifier(f"{store_settings.store_name}_events")
    with psycopg.connect(store_settings.database_url) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), md5(string_agg(e::text, '|' ORDER BY notification_id)) FROM {} e"
            ).format(table)
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def wrapped_keys(store_settings: StoreSettings) -> list[tuple[UUID, bytes]]:
    table = sql.Identifier(f"{store_settings.store_name}_data_keys")
    with psycopg.connect(store_settings.database_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT key_id, wrapped_key FROM {} WHERE wrapped_key IS NOT NULL").format(
                table
            )
        ).fetchall()
    return [(UUID(str(r[0])), bytes(r[1])) for r in rows]


def opens(master: bytes, key_id: UUID, wrapped: bytes) -> bool:
    try:
        AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.bytes)
    except InvalidTag:
        return False
    return True


def test_rotation_rewraps_every_data_key_and_changes_no_event_and_no_id(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    # given a store with patients (three of them erased) and an administrator
    patient_ids = run_workload(pg_store, 8, "ROT")
    admin = account(pg_store, "key.custodian", "admin")
    account(pg_store, "n.nurse", "nurse")
    old_master = load_master_key(store_settings.master_key_file)
    events_before = events_digest(store_settings)
    mrn_id = pg_store.patient_id_for_mrn("ROT000004")
    wrapped_before = wrapped_keys(store_settings)

    # when the master key is rotated (a nurse may not; the administrator may)
    refused = rotate(store_settings, "n.nurse")
    rotated = rotate(store_settings, "key.custodian")

    # then every data key opens under the new master key and none under the old one
    assert refused.returncode == 2 and "this needs one of: admin" in refused.stderr
    assert rotated.returncode == 0, rotated.stderr
    new_master = load_master_key(store_settings.master_key_file)
    assert new_master != old_master
    after = wrapped_keys(store_settings)
    assert {k for k, _ in after} == {k for k, _ in wrapped_before}
    assert all(opens(new_master, *row) and not opens(old_master, *row) for row in after)
    # the old key is kept aside, 0600, until the operator deletes it
    (retired,) = store_settings.master_key_file.parent.glob("master.key.retired-*")
    assert load_master_key(retired) == old_master
    assert retired.stat().st_mode & 0o777 == 0o600
    assert f"{len(after)} data keys re-wrapped" in rotated.stdout

    # and no event changed but the one recording the rotation
    count, _ = events_digest(store_settings)
    assert count == events_before[0] + 1
    table = sql.Identifier(f"{store_settings.store_name}_events")
    with psycopg.connect(store_settings.database_url) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT md5(string_agg(e::text, '|' ORDER BY notification_id)) FROM {} e "
                "WHERE notification_id <= %s"
            ).format(table),
            (events_before[0],),
        ).fetchone()
    assert row == (events_before[1],)

    # and, with the old key gone, a new process reads every patient and resolves every id
    retired.unlink()
    fresh = build_store(store_settings)
    try:
        for patient_id in patient_ids[3:]:
            assert fresh.load(patient_id, patients.evolve) is not None
        for patient_id in patient_ids[:3]:
            with pytest.raises(PatientErasedError):
                fresh.load(patient_id, patients.evolve)
        assert fresh.patient_id_for_mrn("ROT000004") == mrn_id
        assert fresh.user_id_for("key.custodian") == admin
        rotations = [
            header
            for page in fresh.event_log.headers()
            for header in page
            if header.event_type == "keys.rotated"
        ]
        assert len(rotations) == 1 and rotations[0].actor.user_id == admin
        assert rotations[0].patient_id is None
    finally:
        fresh.close()


def test_an_existing_store_without_an_id_key_file_keeps_the_ids_it_was_made_with(
    store_settings: StoreSettings,
) -> None:
    # given a store whose ids were made with the master key's subkey (before ids.key)
    store = build_store(store_settings)
    register(store, "MRN-ID1")
    store.close()
    store_settings.id_key_path.unlink()
    master = load_master_key(store_settings.master_key_file)
    legacy = ClinicalStore(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        Keyring(master, MemoryKeyStore()),
        derive_key(master, ID_KEY_PURPOSE),
    )

    # when a process opens it
    reopened = build_store(store_settings)

    # then the id key is written once, with the value the ids were made with, and recorded
    try:
        assert store_settings.id_key_path.stat().st_mode & 0o777 == 0o600
        assert reopened.patient_id_for_mrn("MRN-ID2") == legacy.patient_id_for_mrn("MRN-ID2")
        assert reopened.user_id_for("a.admin") == legacy.user_id_for("a.admin")
        separated = [
            header.event_type
            for page in reopened.event_log.headers()
            for header in page
            if header.event_type == "keys.id_key_separated"
        ]
        assert separated == ["keys.id_key_separated"]
    finally:
        reopened.close()
