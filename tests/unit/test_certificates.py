"""The local CA: made once, kept while valid, remade when expiring; keys 0600; the server
certificate names the loopback addresses; each principal's certificate is its name."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.local_stack.certificates import Authority, ensure_certificates


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_the_ca_signs_a_server_and_one_client_per_principal(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path, ["relay", "pharmacy"])
    assert made == ["ca", "server", "relay", "pharmacy"]
    authority = Authority(tmp_path)
    ca = load(authority.ca.cert)
    server = load(authority.server.cert)
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    relay = load(authority.client("relay").cert)
    relay.verify_directly_issued_by(ca)
    assert relay.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "relay"
    usage = relay.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # the server's file carries its chain (Kafka's PEM key store wants it)
    assert len(x509.load_pem_x509_certificates(authority.server.cert.read_bytes())) == 2
    for key in (authority.ca.key, authority.server.key, authority.client("relay").key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_running_again_keeps_what_is_valid_and_adds_new_principals(tmp_path: Path) -> None:
    ensure_certificates(tmp_path, ["relay"])
    before = Authority(tmp_path).client("relay").cert.read_bytes()
    assert ensure_certificates(tmp_path, ["relay", "operator"]) == ["operator"]
    assert Authority(tmp_path).client("relay").cert.read_bytes() == before
    assert ensure_certificates(tmp_path, ["relay", "operator"]) == []


def test_expiring_certificates_are_made_again(tmp_path: Path) -> None:
    ensure_certificates(tmp_path, ["relay"])
    in_two_years = datetime.now(UTC) + timedelta(days=2 * 365 + 200)
    assert ensure_certificates(tmp_path, ["relay"], now=in_two_years) == ["server", "relay"]
    in_ten_years = datetime.now(UTC) + timedelta(days=3650)
    made = ensure_certificates(tmp_path, ["relay"], now=in_ten_years)
    assert made == ["ca", "server", "relay"]  # a new CA: everything it signed is new
    load(Authority(tmp_path).client("relay").cert).verify_directly_issued_by(
        load(Authority(tmp_path).ca.cert)
    )
