"""HTTPS by default, plaintext only where a proxy on this host terminates TLS, and a
missing certificate stops `backbone serve` with a message instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cli.serve import tls_options
from services.hl7.settings import HL7Settings
from services.local_stack.certificates import ensure_certificates
from services.settings import ServiceSettings
from services.tls import CertificatesMissing

PRODUCTION = {
    "environment": "production",
    "postgres_password": "not-the-development-one",
    "database_url": "postgresql://backbone:elsewhere@db:5432/backbone",
}


def test_the_api_serves_https_with_the_local_cas_server_certificate_by_default(
    tmp_path: Path,
) -> None:
    ensure_certificates(tmp_path, [])
    settings = ServiceSettings(tls_dir=tmp_path)

    assert settings.api_url == "https://127.0.0.1:8000"
    assert settings.ca_file == tmp_path / "ca.pem"
    assert tls_options(settings) == {
        "ssl_certfile": str(tmp_path / "server.pem"),
        "ssl_keyfile": str(tmp_path / "server.key"),
    }


def test_an_operators_own_certificate_is_served_and_a_missing_one_is_named(
    tmp_path: Path,
) -> None:
    settings = ServiceSettings(
        tls_dir=tmp_path, api_tls_cert_file=tmp_path / "mine.pem", api_tls_key_file=tmp_path / "k"
    )
    with pytest.raises(CertificatesMissing, match=r"mine\.pem"):
        tls_options(settings)


def test_plain_http_is_for_a_proxy_on_this_host_only() -> None:
    behind_proxy = ServiceSettings(api_tls=False)
    assert behind_proxy.api_url == "http://127.0.0.1:8000"
    assert tls_options(behind_proxy) == {}
    with pytest.raises(ValidationError, match="BACKBONE_API_TLS=false"):
        ServiceSettings(api_tls=False, api_host="10.1.2.3", **PRODUCTION)
    assert ServiceSettings(api_host="10.1.2.3", **PRODUCTION).api_tls


def test_mllp_leaves_loopback_only_over_tls() -> None:
    with pytest.raises(ValidationError, match="BACKBONE_HL7_TLS"):
        HL7Settings(host="10.1.2.3")
    assert HL7Settings(host="10.1.2.3", tls=True).address == "10.1.2.3:2575"
