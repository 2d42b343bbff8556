"""Tamper evidence on the real store: direct edits in PostgreSQL are found at their position."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from events.application import ClinicalStore
from events.commands.medications import ChangeMedication
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient
from events.settings import StoreSettings
from events.store import chain
from events.store.insert_only import MAINTENANCE_ROLE
from events.store.verification import ChainVerifier
from tests.integration.test_store_postgres import amoxicillin, register
from tests.unit.conftest import NURSE, ctx

pytestmark = pytest.mark.integration


def some_history(store: ClinicalStore) -> list[int]:
    patient = register(store, "MRN-T1")
    medication = store.prescribe(ctx(), amoxicillin(patient)).id
    positions = [
        store.change_medication(
            ctx(reason=f"step {i}"), ChangeMedication(medication, dose=250 + i)
        ).position
        for i in range(5)
    ]
    vitals = RecordVitals(patient, heart_rate=80)
    positions.append(store.record_vitals(ctx(NURSE), vitals).position)
    forgotten = register(store, "MRN-T2")
    store.forget(ctx(reason="erasure request"), ErasePatient(forgotten, "GDPR art. 17"))
    return positions


def as_maintenance(conn: psycopg.Connection[TupleRow]) -> psycopg.Connection[TupleRow]:
    """The events are INSERT-only: editing them takes the maintenance role, explicitly."""
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(MAINTENANCE_ROLE)))
    return conn


def tamper(store_settings: StoreSettings, statement: str, *params: object) -> None:
    table = sql.Identifier(f"{store_settings.store_name}_events")
    with psycopg.connect(store_settings.database_url, autocommit=True) as conn:
        as_maintenance(conn)
        conn.execute(sql.SQL(statement).format(table=table), params)  # type: ignore[arg-type]


def test_an_untouched_store_verifies_including_an_erasure(
    verifier: ChainVerifier, pg_store: ClinicalStore
) -> None:
    some_history(pg_store)
    verdict = verifier.verify()
    assert verdict.ok and verdict.checked == pg_store.recorder.max_notification_id()


def test_an_altered_row_is_found_at_its_position(
    verifier: ChainVerifier, pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    positions = some_history(pg_store)
    tamper(
        store_settings,
        "UPDATE {table} SET state = state || '\\x00'::bytea WHERE notification_id = %s",
        positions[2],
    )
    verdict = verifier.verify()
    assert (verdict.broken_at, verdict.problem) == (
        positions[2],
        "event altered (stream hash mismatch)",
    )


def test_a_deleted_row_is_found_at_its_position(
    verifier: ChainVerifier, pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    positions = some_history(pg_store)
    tamper(store_settings, "DELETE FROM {table} WHERE notification_id = %s", positions[3])
    assert verifier.verify().broken_at == positions[3]


def test_reordered_rows_are_found_at_the_first_of_them(
    verifier: ChainVerifier, pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    positions = some_history(pg_store)
    first, second = positions[1], positions[2]
    tamper(
        store_settings,
        "UPDATE {table} SET notification_id = -1 WHERE notification_id = %s",
        first,
    )
    tamper(
        store_settings,
        "UPDATE {table} SET notification_id = %s WHERE notification_id = %s",
        first,
        second,
    )
    tamper(
        store_settings, "UPDATE {table} SET notification_id = %s WHERE notification_id = -1", second
    )
    assert verifier.verify().broken_at == first


def test_a_rewritten_tail_is_caught_by_the_signed_checkpoint(
    verifier: ChainVerifier, pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    positions = some_history(pg_store)
    signed = verifier.checkpoint(verifier.verify())
    assert signed is not None
    target = positions[4]
    tamper(
        store_settings,
        "UPDATE {table} SET state = state || '\\x01'::bytea WHERE notification_id = %s",
        target,
    )
    _recompute_chain_after(store_settings, target - 1)

    verdict = verifier.verify()

    assert verdict.broken_at == signed
    assert verdict.problem == "history rewritten after a signed checkpoint"


def _recompute_chain_after(store_settings: StoreSettings, after: int) -> None:
    """What an attacker with database access would do: relink the chain from a point on."""
    events = sql.Identifier(f"{store_settings.store_name}_events")
    links = sql.Identifier(f"{store_settings.store_name}_events_chain")
    with psycopg.connect(store_settings.database_url, autocommit=True) as conn:
        as_maintenance(conn)
        rows = conn.execute(
            sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} ORDER BY 1"
            ).format(events)
        ).fetchall()
        streams: dict[object, bytes] = {}
        previous = chain.GENESIS
        for position, originator_id, version, topic, state in rows:
            link = chain.stream_hash(
                streams.get(originator_id, chain.GENESIS),
                originator_id,
                version,
                topic,
                bytes(state),
            )
            streams[originator_id] = link
            previous = chain.global_hash(previous, position, link)
            if position > after:
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET stream_hash = %s, global_hash = %s "
                        "WHERE notification_id = %s"
                    ).format(links),
                    (link, previous, position),
                )


def test_backbone_verify_reports_ok_then_the_broken_position(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    positions = some_history(pg_store)
    env = {
        **os.environ,
        "BACKBONE_STORE_NAME": store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(store_settings.master_key_file),
        "BACKBONE_WITNESS_DIR": str(store_settings.witness_dir),
        "BACKBONE_CHECKPOINT_KEY_FILE": str(tmp_path / "cp.key"),
    }
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "services.cli", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    good = run()
    tamper(
        store_settings,
        "UPDATE {table} SET state = state || '\\x02'::bytea WHERE notification_id = %s",
        positions[0],
    )
    bad = run()

    assert good.returncode == 0 and "OK:" in good.stdout and "signed checkpoint" in good.stdout
    assert bad.returncode == 1 and f"BROKEN at position {positions[0]}" in bad.stdout
