"""Tamper evidence that a database administrator cannot reset: the witness outside the
database, no chain rebuilt at start-up, and chaining an old store only on explicit request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from events.application import ClinicalStore
from events.settings import StoreSettings
from events.store import chain
from events.store.verification import SigningKeyExposed, load_signing_key
from events.store.witness import Witness, WitnessLine
from services.bootstrap import build_store, service_pool
from tests.cli import backbone_on
from tests.integration.test_tamper_evidence import as_maintenance, some_history
from tests.unit.conftest import account

pytestmark = pytest.mark.integration


def backbone(
    store_settings: StoreSettings, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """A ``backbone`` command run as an operator runs it: a new process, started afresh."""
    return backbone_on(
        store_settings,
        *args,
        BACKBONE_CHECKPOINT_KEY_FILE=str(tmp_path / "checkpoint.key"),
        BACKBONE_WITNESS_DIR=str(tmp_path / "witness"),
        COLUMNS="400",
    )


def admin_sql(store_settings: StoreSettings, statement: str, *params: object) -> None:
    """What an administrator with database access does: statements around the store."""
    name = store_settings.store_name
    tables = {
        "events": sql.Identifier(f"{name}_events"),
        "chain": sql.Identifier(f"{name}_events_chain"),
        "checkpoints": sql.Identifier(f"{name}_events_checkpoints"),
    }
    with psycopg.connect(store_settings.database_url, autocommit=True) as conn:
        as_maintenance(conn)
        conn.execute(sql.SQL(statement).format(**tables), params)  # type: ignore[arg-type]


def relink_everything(store_settings: StoreSettings) -> None:
    """Rebuild the whole chain from what is left, as the old start-up backfill did."""
    name = store_settings.store_name
    events, links = sql.Identifier(f"{name}_events"), sql.Identifier(f"{name}_events_chain")
    with psycopg.connect(store_settings.database_url, autocommit=True) as conn:
        as_maintenance(conn)
        conn.execute(sql.SQL("TRUNCATE {}").format(links))
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
                streams.get(originator_id, chain.GENESIS), originator_id, version, topic, state
            )
            streams[originator_id] = link
            previous = chain.global_hash(previous, position, link)
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(links),
                (position, originator_id, version, link, previous),
            )


def chain_links(store_settings: StoreSettings) -> int:
    table = sql.Identifier(f"{store_settings.store_name}_events_chain")
    with psycopg.connect(store_settings.database_url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def test_deleted_events_and_a_truncated_chain_stay_broken_after_a_restart(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    # given a history that `backbone verify` checked and witnessed
    positions = some_history(pg_store)
    witnessed = backbone(store_settings, tmp_path, "verify")
    events = pg_store.recorder.max_notification_id()

    # when an administrator deletes two events (the last of their streams, so that what is
    # left still chains), truncates the chain and the checkpoints
    admin_sql(
        store_settings,
        "DELETE FROM {events} WHERE notification_id IN (%s, %s)",
        positions[4],
        positions[5],
    )
    admin_sql(store_settings, "TRUNCATE {chain}, {checkpoints}")
    # and everything restarts (a store process, then verify in a process of its own)
    build_store(store_settings).close()
    verdict = backbone(store_settings, tmp_path, "verify")

    # then nothing re-chained the store, and verify names what is missing
    assert witnessed.returncode == 0 and "signed checkpoint" in witnessed.stdout
    assert chain_links(store_settings) == 0
    assert verdict.returncode == 1, verdict.stdout
    assert f"BROKEN at position {events}" in verdict.stdout
    assert "2 witnessed events missing" in verdict.stdout
    assert "the chain table is empty" in verdict.stdout
    assert f"the witness signed {events} events up to position {events}" in verdict.stdout


def test_a_chain_rebuilt_by_hand_after_deleting_events_differs_from_the_witness(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    # given a witnessed history
    positions = some_history(pg_store)
    assert backbone(store_settings, tmp_path, "verify").returncode == 0

    # when an administrator deletes an event and relinks what is left, checkpoints gone too
    admin_sql(store_settings, "DELETE FROM {events} WHERE notification_id = %s", positions[5])
    admin_sql(store_settings, "TRUNCATE {checkpoints}")
    relink_everything(store_settings)
    verdict = backbone(store_settings, tmp_path, "verify")

    # then the database agrees with itself, but not with the witness
    assert verdict.returncode == 1
    assert "1 witnessed events missing" in verdict.stdout
    assert "1 chain links missing" in verdict.stdout
    assert "history differs from the witness at its position" in verdict.stdout


def test_an_event_altered_and_relinked_is_found_at_the_witnessed_position(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    positions = some_history(pg_store)
    assert backbone(store_settings, tmp_path, "verify").returncode == 0
    head = pg_store.recorder.max_notification_id()

    admin_sql(
        store_settings,
        "UPDATE {events} SET state = state || '\\x03'::bytea WHERE notification_id = %s",
        positions[0],
    )
    admin_sql(store_settings, "TRUNCATE {checkpoints}")
    relink_everything(store_settings)
    verdict = backbone(store_settings, tmp_path, "verify")

    assert verdict.returncode == 1
    assert f"BROKEN at position {head}: history differs from the witness" in verdict.stdout


def test_the_witness_is_one_signed_json_line_per_checkpoint_outside_the_database(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    some_history(pg_store)
    first = backbone(store_settings, tmp_path, "verify")
    again = backbone(store_settings, tmp_path, "verify")  # nothing new: nothing appended

    path = tmp_path / "witness" / f"{store_settings.store_name}.jsonl"
    rows = path.read_text().splitlines()
    key = load_signing_key(tmp_path / "checkpoint.key")
    line = WitnessLine.from_json(rows[0])
    head = pg_store.recorder.max_notification_id()
    assert first.returncode == 0 and again.returncode == 0
    assert len(rows) == 1
    assert set(json.loads(rows[0])) >= {"position", "head_hash", "count", "signed_at", "signature"}
    assert (line.position, line.count, line.action) == (head, head, "checkpoint")
    assert line.check(key.public_key())
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "checkpoint.key").stat().st_mode & 0o777 == 0o600


def test_the_relay_signer_refuses_to_bless_a_chain_that_disagrees_with_the_witness(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    positions = some_history(pg_store)
    pool = service_pool(store_settings)
    try:
        key = load_signing_key(tmp_path / "checkpoint.key")
        witness = Witness(tmp_path / "witness", store_settings.store_name)
        signer = pg_store.chain_verifier(pool, key, witness)
        signed = signer.sign_head()
        admin_sql(store_settings, "DELETE FROM {events} WHERE notification_id = %s", positions[0])
        relink_everything(store_settings)
        refused = signer.sign_head()
        lines = witness.lines(key.public_key())
    finally:
        pool.close()

    assert signed == pg_store.recorder.max_notification_id()
    assert refused is None
    assert [line.position for line in lines] == [signed]


def test_a_store_never_chained_is_chained_only_on_explicit_request_and_only_once(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    # given a store written before chaining existed (events, no links, nothing witnessed)
    some_history(pg_store)
    account(pg_store, "it.admin", "admin")
    admin_sql(store_settings, "TRUNCATE {chain}")
    head = pg_store.recorder.max_notification_id()

    # when it restarts, is verified, then chained by an admin, then chained once more
    build_store(store_settings).close()
    unchained = backbone(store_settings, tmp_path, "verify", "--no-checkpoint")
    nobody = backbone(store_settings, tmp_path, "verify", "--chain-existing", "--operator", "x")
    chained = backbone(
        store_settings, tmp_path, "verify", "--chain-existing", "--operator", "it.admin"
    )
    twice = backbone(
        store_settings, tmp_path, "verify", "--chain-existing", "--operator", "it.admin"
    )

    # then start-up left it alone, only the admin's explicit command chained it, witnessed
    assert unchained.returncode == 1 and "event without a chain link" in unchained.stdout
    assert nobody.returncode == 2 and chain_links(store_settings) == head
    assert chained.returncode == 0, chained.stderr
    assert f"chained {head} events, witnessed at position {head}" in chained.stderr
    assert f"OK: {head} events verified" in chained.stdout
    witnessed = (tmp_path / "witness" / f"{store_settings.store_name}.jsonl").read_text()
    assert '"action":"chain-init by it.admin' in witnessed
    assert twice.returncode == 2 and "a witness exists for this store" in twice.stderr


def test_chaining_is_refused_after_the_chain_was_truncated_even_without_checkpoints(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    some_history(pg_store)
    account(pg_store, "it.admin", "admin")
    assert backbone(store_settings, tmp_path, "verify").returncode == 0

    admin_sql(store_settings, "TRUNCATE {chain}, {checkpoints}")
    refused = backbone(
        store_settings, tmp_path, "verify", "--chain-existing", "--operator", "it.admin"
    )

    assert refused.returncode == 2 and "a witness exists for this store" in refused.stderr
    assert chain_links(store_settings) == 0


def test_a_signing_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.key"
    load_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyExposed, match="chmod 600"):
        load_signing_key(path)
