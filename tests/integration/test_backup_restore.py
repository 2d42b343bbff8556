"""Backups as an operator takes and restores them: `backbone backup`, `restore`, `verify`.

The round trip restores into a second, empty database of the same PostgreSQL cluster (a
fresh cluster in all but the server process), under the same store name; the refusals
restore into a fresh store name of the test's own database.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.domain.aggregates import patients
from events.settings import StoreSettings
from projections.engine.database import read_pool
from projections.engine.rebuild import build_shadow
from projections.registry import ALL
from services.bootstrap import build_store
from services.local_stack.stack import LocalStack
from tests.cli import backbone_on
from tests.integration.projection_harness import isolated_settings
from tests.integration.workload import run_workload

pytestmark = pytest.mark.integration


def backbone(
    store_settings: StoreSettings, tmp_path: Path, *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return backbone_on(
        store_settings,
        *args,
        BACKBONE_CHECKPOINT_KEY_FILE=str(tmp_path / "checkpoint.key"),
        BACKBONE_BACKUP_KEY_FILE=str(tmp_path / "vault" / "backup.key"),
        BACKBONE_DATABASE_URL=database_url or store_settings.database_url,
    )


@pytest.fixture
def empty_database(stack: LocalStack, store_settings: StoreSettings) -> Iterator[str]:
    """A new, empty database on the cluster, owned by our role; its URL."""
    name = f"restore_{uuid.uuid4().hex[:10]}"
    info = conninfo_to_dict(store_settings.database_url)
    # As the postgres OS user over the socket (peer): the cluster has no other admin path.
    create = sql.SQL("CREATE DATABASE {} OWNER {};")
    stack.postgres.admin(
        create.format(sql.Identifier(name), sql.Identifier(str(info["user"]))).as_string()
    )
    yield make_conninfo(store_settings.database_url, dbname=name)
    stack.postgres.admin(
        sql.SQL("DROP DATABASE {} WITH (FORCE);").format(sql.Identifier(name)).as_string()
    )


def rebuilt(pool: ConnectionPool, store: ClinicalStore, schema: str) -> dict[str, list[Any]]:
    """Every projection's tables rebuilt from ``store``, as sorted rows."""
    tables: dict[str, list[Any]] = {}
    for projection in ALL:
        shadow, *_ = build_shadow(pool, store, projection, schema)
        with pool.connection() as conn:
            for table in projection.tables:
                rows = conn.execute(
                    sql.SQL("SELECT * FROM {}").format(sql.Identifier(shadow, table))
                ).fetchall()
                tables[f"{projection.name}.{table}"] = sorted(map(repr, rows))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(shadow)))
    return tables


def test_a_backup_restores_into_an_empty_database_verifies_and_rebuilds_the_same_projections(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path, empty_database: str
) -> None:
    # given a store with a clinical workload (erasures included) and a signed checkpoint
    patient_ids = run_workload(pg_store, 12, "BK")
    assert backbone(store_settings, tmp_path, "verify").returncode == 0
    out = tmp_path / "backups" / "today"

    # when it is backed up and restored into an empty database
    taken = backbone(store_settings, tmp_path, "backup", "--out", str(out))
    assert taken.returncode == 0, taken.stderr
    restored = backbone(store_settings, tmp_path, "restore", str(out), database_url=empty_database)
    assert restored.returncode == 0, restored.stderr
    verified = backbone(store_settings, tmp_path, "verify", database_url=empty_database)

    # then the backup holds no key and no plaintext, and the restored store verifies
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "store.dump.enc"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["store"] == store_settings.store_name
    assert manifest["head"] == pg_store.event_log.head()
    assert {"events", "data_keys", "events_chain"} <= set(manifest["tables"])
    assert manifest["tables"]["events"]["rows"] == pg_store.event_log.head()
    with psycopg.connect(store_settings.database_url) as conn:
        topic = conn.execute(
            sql.SQL("SELECT topic FROM {} LIMIT 1").format(
                sql.Identifier(f"{store_settings.store_name}_events")
            )
        ).fetchone()
    assert topic is not None and topic[0].encode() not in (out / "store.dump.enc").read_bytes()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"OK: {manifest['head']} events verified" in verified.stdout

    # and every projection rebuilt from the restored store equals the original's
    copy_settings = store_settings.model_copy(update={"database_url": empty_database})
    copy = build_store(copy_settings)
    pool = read_pool(isolated_settings(store_settings))
    try:
        original = rebuilt(pool, pg_store, f"o{uuid.uuid4().hex[:8]}")
        again = rebuilt(pool, copy, f"c{uuid.uuid4().hex[:8]}")
        assert original == again
        assert sum(map(len, original.values())) > 50
        # ids resolve the same (the id key came from its own file), patients read the same
        assert copy.patient_id_for_mrn("BK000005") == pg_store.patient_id_for_mrn("BK000005")
        live = patient_ids[5]
        assert copy.load(live, patients.evolve) == pg_store.load(live, patients.evolve)
    finally:
        pool.close()
        copy.close()


def test_a_tampered_backup_is_refused_before_anything_is_loaded(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    run_workload(pg_store, 3, "TB")
    out = tmp_path / "backup"
    assert backbone(store_settings, tmp_path, "backup", "--out", str(out)).returncode == 0
    dump = out / "store.dump.enc"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    target = f"t{uuid.uuid4().hex[:12]}"

    refused = backbone(store_settings, tmp_path, "restore", str(out), "--store", target)

    assert refused.returncode == 1
    assert "does not hash to the manifest's SHA-256" in refused.stderr
    with psycopg.connect(store_settings.database_url) as conn:
        made = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE %s",
            (f"{target}\\_%",),
        ).fetchone()
    assert made == (0,)

    # a manifest edited to match the altered file fails its HMAC
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["ciphertext_sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    edited = backbone(store_settings, tmp_path, "restore", str(out), "--store", target)
    assert edited.returncode == 1 and "HMAC does not match" in edited.stderr


def test_restore_refuses_a_store_that_is_not_empty_and_backup_keeps_its_key_apart(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> None:
    run_workload(pg_store, 3, "NE")
    out = tmp_path / "backup"
    assert backbone(store_settings, tmp_path, "backup", "--out", str(out)).returncode == 0
    target = f"t{uuid.uuid4().hex[:12]}"
    first = backbone(store_settings, tmp_path, "restore", str(out), "--store", target)
    head_before = first.returncode == 0 and pg_store.event_log.head()

    again = backbone(store_settings, tmp_path, "restore", str(out), "--store", target)
    onto_itself = backbone(store_settings, tmp_path, "restore", str(out))
    beside_key = backbone(
        store_settings, tmp_path, "backup", "--out", str(tmp_path / "vault" / "b1")
    )

    assert first.returncode == 0, first.stderr
    assert again.returncode == 1 and "is not empty" in again.stderr
    assert onto_itself.returncode == 1 and "is not empty" in onto_itself.stderr
    assert pg_store.event_log.head() == head_before
    assert beside_key.returncode == 1 and "must not be stored beside" in beside_key.stderr
    key_file = tmp_path / "vault" / "backup.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes() != store_settings.master_key_file.read_bytes()
