"""Every database URL verifies the server unless the operator chose otherwise; the local
cluster's configuration is TLS-only and rewritten idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from events.settings import StoreSettings, verified_database_url
from events.store.connect import CONNECT_ARGS
from projections.settings import ProjectionSettings
from services.bootstrap import store_env
from services.local_stack.postgres_config import (
    MARKER,
    conf_block,
    roles_script,
    scram_verifier,
    with_block,
)
from services.settings import ServiceSettings

CA = Path("/etc/backbone/ca files/ca.pem")


def test_a_url_without_sslmode_gets_verify_full_and_the_ca() -> None:
    url = verified_database_url("postgresql://u:p@db.example:5432/backbone", CA)
    info = conninfo_to_dict(url)
    assert (info["sslmode"], info["sslrootcert"], info["host"]) == (
        "verify-full",
        str(CA),
        "db.example",
    )
    assert url.startswith("postgresql://u:p@db.example:5432/backbone?")


def test_query_and_keyword_forms_keep_what_they_had() -> None:
    with_query = conninfo_to_dict(
        verified_database_url("postgresql://u@h/db?connect_timeout=3", CA)
    )
    assert with_query["connect_timeout"] == "3" and with_query["sslmode"] == "verify-full"
    keywords = conninfo_to_dict(verified_database_url("host=h dbname=db user=u", CA))
    assert keywords["sslmode"] == "verify-full" and keywords["sslrootcert"] == str(CA)


@pytest.mark.parametrize("mode", ["disable", "require", "verify-ca"])
def test_an_explicit_sslmode_is_the_operators_choice(mode: str) -> None:
    url = f"postgresql://u@h/db?sslmode={mode}"
    assert verified_database_url(url, CA) == url


def test_an_operators_own_root_certificate_is_kept() -> None:
    info = conninfo_to_dict(verified_database_url("postgresql://u@h/db?sslrootcert=/mine.pem", CA))
    assert (info["sslmode"], info["sslrootcert"]) == ("verify-full", "/mine.pem")


def test_every_packages_default_url_verifies_the_server(tmp_path: Path) -> None:
    for settings in (
        StoreSettings(tls_dir=tmp_path),
        ProjectionSettings(tls_dir=tmp_path),
        ServiceSettings(tls_dir=tmp_path),
    ):
        info = conninfo_to_dict(settings.database_url)
        assert (info["sslmode"], info["sslrootcert"]) == ("verify-full", str(tmp_path / "ca.pem"))
    chosen = StoreSettings(database_ca_file=CA, tls_ca_file=tmp_path / "other.pem")
    assert conninfo_to_dict(chosen.database_url)["sslrootcert"] == str(CA)


def test_the_event_store_gets_the_tls_parameters_too() -> None:
    env = store_env(StoreSettings(database_ca_file=CA))
    extra = conninfo_to_dict(env[CONNECT_ARGS])
    assert (extra["sslmode"], extra["sslrootcert"]) == ("verify-full", str(CA))
    assert "password" not in extra and env["POSTGRES_HOST"] == "127.0.0.1"


def test_our_block_replaces_the_old_one_and_stays_single() -> None:
    old = f"shared_buffers = 128MB\n\n{MARKER}\nport = 55432\nlisten_addresses = '127.0.0.1'\n"
    block = conf_block(55432, Path("/run/pg"), Path("/data/pg"))
    once = with_block(old, block)
    assert with_block(once, block) == once
    assert once.count(MARKER) == 1 and once.startswith("shared_buffers = 128MB\n")
    assert "ssl = on\n" in once and "ssl_min_protocol_version = 'TLSv1.2'\n" in once
    assert "ssl_key_file = '/data/pg/server.key'\n" in once


def test_the_password_goes_to_the_server_as_a_scram_verifier_only() -> None:
    verifier = scram_verifier("backbone", salt=b"\x00" * 16)
    assert verifier is not None and verifier.startswith(
        "SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$"
    )
    script = roles_script("backbone", "s3cret-s3cret", "backbone")
    assert "s3cret" not in script and "SCRAM-SHA-256$4096:" in script
    assert 'CREATE ROLE "backbone_maintenance" NOLOGIN' in script
    assert scram_verifier("pässword") is None
