"""TLS contexts for the project's servers and clients, from PEM files (``services.settings``).

Servers present the local CA's server certificate (or the operator's own) and, where a
client certificate is required, verify it against the CA; clients verify the server
against the CA file and may present a certificate of their own. TLS 1.2 is the floor.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from services.settings import ServiceSettings


class CertificatesMissing(SystemExit):
    """A server or client cannot start: a certificate or key file is not there."""

    def __init__(self, what: str, paths: tuple[Path, ...]) -> None:
        missing = ", ".join(str(p) for p in paths if not p.is_file())
        super().__init__(
            f"backbone: {what}: missing {missing}; `backbone certs init` (or `certs "
            "hl7-sender`) makes the local CA's, or point the settings at your own files"
        )


def _require(what: str, *paths: Path) -> None:
    if not all(p.is_file() for p in paths):
        raise CertificatesMissing(what, paths)


def client_context(
    ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """Verifies the server (certificate and host name) against ``ca_file``; presents the
    client certificate when one is given."""
    _require("TLS client", ca_file)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        _require("TLS client certificate", cert_file, key_file)
        context.load_cert_chain(str(cert_file), str(key_file))
    return context


def server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """Presents ``cert_file``; with ``client_ca_file``, requires a client certificate it
    signed (``CERT_REQUIRED``)."""
    _require("TLS server", cert_file, key_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file is not None:
        _require("TLS client verification", client_ca_file)
        context.load_verify_locations(cafile=str(client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def api_client_context(settings: ServiceSettings) -> ssl.SSLContext:
    """What every client of the API in the project verifies it with (the CA file)."""
    return client_context(settings.ca_file)


def peer_common_name(peercert: object) -> str | None:
    """The subject's common name of a verified peer certificate (``getpeercert()``)."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
