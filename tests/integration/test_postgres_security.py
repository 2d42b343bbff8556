"""PostgreSQL security on a cluster of the test's own (TLS only, SCRAM, no trust) and the
INSERT-only event tables on a store in it.

The cluster is isolated: its own data directory under /tmp, its own port, its own CA. It
never touches the shared stack, so it needs only the PostgreSQL binaries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row

from events.application import ClinicalStore
from events.settings import StoreSettings
from events.store.insert_only import MAINTENANCE_ROLE
from events.store.keys import create_master_key
from events.store.recorders import ClinicalPostgresRecorder
from events.store.verification import load_signing_key
from services.bootstrap import build_store, service_pool
from services.local_stack.certificates import ensure_certificates
from services.local_stack.postgres import OWNER, LocalPostgres, find_bin_dir
from services.local_stack.postgres_config import MARKER
from services.local_stack.processes import free_port, run
from services.settings import ServiceSettings
from tests.integration.test_tamper_evidence import some_history

pytestmark = pytest.mark.integration


def cluster_settings(root: Path) -> ServiceSettings:
    """A cluster under ``root`` on a free port, with the CA of ``root/tls``."""
    port = free_port()
    return ServiceSettings(
        data_dir=root / "data",
        tls_dir=root / "tls",
        postgres_port=port,
        database_url=f"postgresql://backbone:backbone@127.0.0.1:{port}/backbone",
    )


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    """A directory the postgres user can reach (pytest's tmp_path is root's, 0700)."""
    root = Path(tempfile.mkdtemp(prefix="backbone-pgsec-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(scratch: Path) -> Iterator[LocalPostgres]:
    """A TLS-only cluster of our own, started the way ``backbone infra up`` starts one."""
    postgres = LocalPostgres(cluster_settings(scratch / "secure"))
    postgres.start()
    postgres.ensure_database()
    yield postgres
    postgres.stop()


def tls_of(conn: psycopg.Connection[Any]) -> tuple[bool, str]:
    """Whether the server sees this connection over TLS, and which version."""
    cursor = conn.cursor(row_factory=tuple_row)
    found = cursor.execute(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone()
    assert found is not None
    return bool(found[0]), str(found[1])


def refused(url: str, **overrides: str) -> str:
    """Why a connection with these parameters is refused (it must be)."""
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(make_conninfo(url, **overrides), connect_timeout=5).close()
    return str(caught.value)


# -- TLS only, SCRAM only, no trust ----------------------------------------------------------
def test_a_plaintext_connection_is_refused(cluster: LocalPostgres) -> None:
    reason = refused(cluster.settings.database_url, sslmode="disable")
    assert "no pg_hba.conf entry" in reason and "no encryption" in reason


def test_verify_full_against_the_ca_connects_over_tls_1_2_or_later(
    cluster: LocalPostgres,
) -> None:
    url = cluster.settings.database_url
    info = conninfo_to_dict(url)
    assert info["sslmode"] == "verify-full"
    assert info["sslrootcert"] == str(cluster.settings.tls_dir / "ca.pem")
    with psycopg.connect(url) as conn:
        ssl, version = tls_of(conn)
    assert ssl and version in ("TLSv1.2", "TLSv1.3")


def test_a_server_certificate_from_another_ca_is_refused(
    cluster: LocalPostgres, scratch: Path
) -> None:
    other = scratch / "other-ca"
    ensure_certificates(other, ())
    reason = refused(cluster.settings.database_url, sslrootcert=str(other / "ca.pem"))
    assert "certificate verify failed" in reason


def test_the_cluster_trusts_no_one_and_stores_scram_passwords(cluster: LocalPostgres) -> None:
    hba = (cluster.data_dir / "pg_hba.conf").read_text().splitlines()
    rules = [line.split() for line in hba if line.strip() and not line.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "peer"],
        ["hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["hostssl", "all", "all", "::1/128", "scram-sha-256"],
    ]
    assert not any("trust" in line for line in hba)
    key = cluster.data_dir / "server.key"
    assert key.stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert key.stat().st_uid == cluster.data_dir.stat().st_uid != 0
    stored = cluster.admin(
        "SELECT rolname, left(rolpassword, 14) FROM pg_authid WHERE rolname = 'backbone';"
    )
    assert stored.strip() == "backbone|SCRAM-SHA-256$"


def _old_trust_cluster(postgres: LocalPostgres) -> None:
    """A cluster as the earlier version made it: trust on the socket, plaintext host lines,
    no TLS, an md5 password; one table of data."""
    bin_dir, data = find_bin_dir(), postgres.data_dir
    postgres.settings.data_dir.mkdir(parents=True)
    postgres.socket_dir.mkdir()
    data.mkdir(mode=0o700)
    for path in (data, postgres.socket_dir):
        postgres._chown_to_owner(path)
    owner = postgres._as_owner
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", OWNER, "--auth-local=trust"]
    run(owner(*initdb, "--auth-host=md5", "--encoding=UTF8", "--locale=C.UTF-8"), "initdb")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\n{MARKER}\nport = {postgres.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{postgres.socket_dir}'\n"
        )
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    run(owner(*pg_ctl, "-l", str(data / "server.log"), "start"), "old start")
    postgres.admin(
        "SET password_encryption = 'md5';\n"
        "CREATE ROLE backbone LOGIN PASSWORD 'backbone';\n"
        "CREATE DATABASE backbone OWNER backbone;\n"
        "\\c backbone\n"
        "SET ROLE backbone;\n"
        "CREATE TABLE kept (note text);\n"
        "INSERT INTO kept VALUES ('written before the switch');\n"
    )
    run(owner(*pg_ctl, "stop", "-m", "fast"), "old stop")


def test_an_old_trust_cluster_restarts_tls_only_with_its_data(scratch: Path) -> None:
    # given a cluster made by the earlier version, stopped
    postgres = LocalPostgres(cluster_settings(scratch / "old"))
    _old_trust_cluster(postgres)
    assert "trust" in (postgres.data_dir / "pg_hba.conf").read_text()
    try:
        # when `backbone infra up` starts it (twice, as a restart would)
        for _ in range(2):
            postgres.start()
            postgres.ensure_database()
            postgres.stop()
        postgres.start()
        postgres.ensure_database()

        # then it serves TLS only, the md5 password became SCRAM, and the data is there
        url = postgres.settings.database_url
        with psycopg.connect(url) as conn:
            assert tls_of(conn)[0]
            assert conn.execute("SELECT note FROM kept").fetchall() == [
                ("written before the switch",)
            ]
        assert "no encryption" in refused(url, sslmode="disable")
        hba = (postgres.data_dir / "pg_hba.conf").read_text()
        assert "trust" not in hba and "\nhost " not in hba
        conf = (postgres.data_dir / "postgresql.conf").read_text()
        assert conf.count(MARKER) == 1 and "\nssl = on\n" in conf
    finally:
        postgres.stop()


# -- the event tables are INSERT-only --------------------------------------------------------
@pytest.fixture
def secured_settings(cluster: LocalPostgres, tmp_path: Path) -> StoreSettings:
    key_file = tmp_path / "master.key"
    create_master_key(key_file)
    return StoreSettings(
        database_url=cluster.settings.database_url,
        master_key_file=key_file,
        store_name=f"s{uuid.uuid4().hex[:12]}",
        key_cache_ttl_s=0,
        witness_dir=tmp_path / "witness",
    )


@pytest.fixture
def secured_store(secured_settings: StoreSettings) -> Iterator[ClinicalStore]:
    store = build_store(secured_settings)
    yield store
    store.close()


def protected_tables(settings: StoreSettings) -> list[str]:
    events = f"{settings.store_name}_events"
    return [events, f"{events}_by_patient", f"{events}_chain", f"{events}_checkpoints"]


def _with_history(store: ClinicalStore, settings: StoreSettings, tmp_path: Path) -> None:
    some_history(store)
    pool = service_pool(settings)
    try:
        verifier = store.chain_verifier(pool, load_signing_key(tmp_path / "checkpoint.key"))
        assert verifier.checkpoint(verifier.verify()) is not None
    finally:
        pool.close()


def test_the_store_connects_over_verified_tls(secured_store: ClinicalStore) -> None:
    recorder = secured_store.recorder
    assert isinstance(recorder, ClinicalPostgresRecorder)
    with recorder.datastore.get_connection() as conn:
        assert tls_of(conn)[0]
        assert conninfo_to_dict(conn.info.dsn)["sslmode"] == "verify-full"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET {key} = {key}",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_the_stores_own_role_cannot_change_or_remove_history(
    secured_store: ClinicalStore, secured_settings: StoreSettings, tmp_path: Path, statement: str
) -> None:
    _with_history(secured_store, secured_settings, tmp_path)
    for table in protected_tables(secured_settings):
        key = "position" if table.endswith("_checkpoints") else "notification_id"
        query = sql.SQL(statement).format(table=sql.Identifier(table), key=sql.Identifier(key))
        with psycopg.connect(secured_settings.database_url, autocommit=True) as conn:
            with pytest.raises(errors.InsufficientPrivilege, match="INSERT-only"):
                conn.execute(query)
            count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = conn.execute(count).fetchone()
        assert row is not None and row[0] > 0, table


def test_the_maintenance_role_can_when_taken_explicitly(
    secured_store: ClinicalStore, secured_settings: StoreSettings, tmp_path: Path
) -> None:
    _with_history(secured_store, secured_settings, tmp_path)
    events, *others = protected_tables(secured_settings)
    with psycopg.connect(secured_settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(MAINTENANCE_ROLE)))
        first = sql.SQL("SELECT min(notification_id) FROM {}").format(sql.Identifier(events))
        row = conn.execute(first).fetchone()
        assert row is not None
        changed = conn.execute(
            sql.SQL("UPDATE {} SET state = state || '\\x00'::bytea WHERE notification_id = %s")
            .format(sql.Identifier(events)),
            (row[0],),
        )  # fmt: skip
        assert changed.rowcount == 1
        gone = conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(events)))
        assert gone.rowcount > 0
        for table in others:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))


def test_the_guard_is_made_once_however_often_the_store_starts(
    secured_store: ClinicalStore, secured_settings: StoreSettings
) -> None:
    build_store(secured_settings).close()
    build_store(secured_settings).close()
    with psycopg.connect(secured_settings.database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname LIKE %s AND NOT t.tgisinternal GROUP BY 1",
            (f"{secured_settings.store_name}%",),
        ).fetchall()
    counted, guarded = dict(rows), protected_tables(secured_settings)[:3]
    assert {t: counted.get(t) for t in guarded} == dict.fromkeys(guarded, 2)
