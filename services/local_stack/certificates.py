"""The local certificate authority: a CA, the servers' certificate and one client
certificate per principal, made with ``cryptography`` under ``.data/tls``.

``make setup`` (``backbone certs init``) makes what is missing and keeps what is valid, so
re-running it changes nothing; keys are written 0600. An operator who has their own PKI
points the settings at their files instead (``BACKBONE_TLS_CA_FILE`` and friends) and never
runs this.

Every server (the API, PostgreSQL, Kafka's broker and controller, the HL7 listener) uses the
one server certificate, named for the loopback addresses; clients verify it against the CA
and present their own certificate, whose common name is their principal.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANISATION = "clinical-backbone (local)"
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")
CA_DAYS, LEAF_DAYS = 3650, 825
# A certificate this close to its end is made again.
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    """Where the local CA keeps its files."""

    root: Path

    @property
    def ca(self) -> Pair:
        return Pair(self.root / "ca.pem", self.root / "ca.key")

    @property
    def server(self) -> Pair:
        return Pair(self.root / "server.pem", self.root / "server.key")

    def client(self, principal: str) -> Pair:
        return Pair(
            self.root / "clients" / f"{principal}.pem", self.root / "clients" / f"{principal}.key"
        )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: what PostgreSQL, OpenSSL, Python's ssl and Java (Kafka's PEM key stores) read.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load(pair: Pair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (pair.cert.is_file() and pair.key.is_file()):
        return None
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return cert, key


def _fresh(cert: x509.Certificate, issuer: x509.Certificate | None, now: datetime) -> bool:
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    return issuer is None or cert.issuer == issuer.subject


def _ca(authority: Authority, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    existing = _load(authority.ca)
    if existing is not None and _fresh(existing[0], None, now):
        return existing
    key = _new_key()
    name = _name("clinical-backbone local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(authority.ca.key, _key_pem(key))
    authority.ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf(
    pair: Pair,
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    now: datetime,
    *,
    server: bool,
) -> bool:
    """Make the certificate unless a fresh one signed by this CA is there; True if made."""
    existing = _load(pair)
    if existing is not None and _fresh(existing[0], ca[0], now):
        return False
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # Servers authenticate to each other too (Kafka's controller and broker, PostgreSQL
        # replicas later): the server certificate is good for both ends of a connection.
        .add_extension(
            x509.ExtendedKeyUsage([usage, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [usage]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False
        )
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_ADDRESSES]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca[1], hashes.SHA256())
    _write_private(pair.key, _key_pem(key))
    # The server's PEM holds its chain: Kafka's PEM key store wants the whole chain.
    chain = [cert, ca[0]] if server else [cert]
    pair.cert.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    return True


def ensure_certificates(
    root: Path, principals: Iterable[str], now: datetime | None = None
) -> list[str]:
    """Make the CA, the server certificate and each principal's client certificate where
    missing, expiring or signed by another CA; what was made (empty when nothing was)."""
    authority = Authority(root)
    moment = now or datetime.now(UTC)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    had_ca = _load(authority.ca)
    ca = _ca(authority, moment)
    made = [] if had_ca is not None and had_ca[0] == ca[0] else ["ca"]
    if _leaf(authority.server, "localhost", ca, moment, server=True):
        made.append("server")
    for principal in principals:
        if _leaf(authority.client(principal), principal, ca, moment, server=False):
            made.append(principal)
    return made


def hl7_sender_pair(root: Path, application: str, facility: str) -> Pair:
    """Where the client certificate of an HL7 sending system (MSH-3, MSH-4) is kept."""
    slug = ".".join(re.sub(r"[^A-Za-z0-9_-]", "_", part) for part in (application, facility))
    return Pair(root / "hl7-senders" / f"{slug}.pem", root / "hl7-senders" / f"{slug}.key")


def ensure_hl7_sender(
    root: Path, application: str, facility: str, now: datetime | None = None
) -> tuple[Pair, bool]:
    """The client certificate of an HL7 sending system, its common name ``MSH-3|MSH-4``,
    signed by the local CA (which must exist: ``backbone certs init``); made when missing,
    expiring, from another CA or for another sender. The pair and whether it was made."""
    ca = _load(Authority(root).ca)
    if ca is None:
        raise FileNotFoundError(f"no local CA in {root}: run `backbone certs init` first")
    name = f"{application}|{facility}"
    pair = hl7_sender_pair(root, application, facility)
    existing = _load(pair)
    if existing is not None:
        names = existing[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [name]:  # the file name is shared by another sender
            pair.cert.unlink()
    return pair, _leaf(pair, name, ca, now or datetime.now(UTC), server=False)
