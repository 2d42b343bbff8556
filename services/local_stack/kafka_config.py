"""The broker's ``server.properties``: TLS-only listeners, client certificates, ACLs.

``backbone infra up`` writes it on every start from ``infra/kafka/server.properties`` and
the settings, so a data directory made by an earlier (plaintext) version only changes its
configuration: the KRaft storage stays. With ``kafka_security_protocol=SSL`` (the default):

- the broker listener (``SSL``) and the controller listener (``CONTROLLER``) are both TLS,
  inter-broker and controller traffic included; there is no plaintext listener;
- every client presents a certificate signed by the trusted CA (``ssl.client.auth=required``)
  and is known by its certificate's common name (``ssl.principal.mapping.rules``);
- KRaft's ``StandardAuthorizer`` denies what no ACL allows; the broker itself (its
  certificate's CN) and ``operator`` are super users.

Java's PEM key store reads a file only with an encrypted key, but takes an unencrypted
PKCS#8 key inline (``ssl.keystore.key`` with ``ssl.keystore.certificate.chain``). So the key
and chain are written into the properties, which are therefore 0600; Kafka logs both values
as ``[hidden]``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from projections.engine.kafka_clients import OPERATOR
from services.local_stack.errors import InfraError
from services.settings import ServiceSettings

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# "CN=relay,O=clinical-backbone (local)" -> "relay", wherever the CN is in the DN; a DN
# without one keeps its full form (and matches no ACL). No backslashes: .properties escapes.
PRINCIPAL_RULES = "RULE:^(.*,)?CN=([^,]+)(,.*)?$/$2/,DEFAULT"


@dataclass(frozen=True)
class BrokerTls:
    """The CA the broker trusts and the certificate (with its chain) and key it presents."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    local_ca: bool

    @classmethod
    def of(cls, settings: ServiceSettings) -> BrokerTls:
        tls = settings.tls_dir
        ca = settings.kafka_ca_file or settings.tls_ca_file
        cert, key = settings.kafka_server_cert_file, settings.kafka_server_key_file
        return cls(
            ca_file=ca or tls / "ca.pem",
            cert_file=cert or tls / "server.pem",
            key_file=key or tls / "server.key",
            local_ca=ca is None and cert is None and key is None,
        )

    def check(self) -> None:
        missing = [p for p in (self.ca_file, self.cert_file, self.key_file) if not p.is_file()]
        if missing:
            hint = (
                "run `backbone certs init`" if self.local_ca else "check the BACKBONE_KAFKA_* files"
            )
            raise InfraError(
                f"Kafka's TLS files are missing ({', '.join(map(str, missing))}): {hint}."
            )

    def principal(self) -> str:
        """The broker's own principal: the common name of its certificate."""
        certs = x509.load_pem_x509_certificates(self.cert_file.read_bytes())
        names = certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise InfraError(f"{self.cert_file}: the broker's certificate has no common name")
        return str(names[0].value)


def broker_properties(settings: ServiceSettings, log_dirs: Path) -> dict[str, str]:
    """The settings-dependent properties, over the template's."""
    port, controller = settings.kafka_port, settings.kafka_controller_port
    values = {
        "log.dirs": str(log_dirs),
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
        "controller.listener.names": "CONTROLLER",
    }
    if settings.kafka_security_protocol == "PLAINTEXT":
        return values | {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        }
    tls = BrokerTls.of(settings)
    tls.check()
    return values | {
        "listeners": f"SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SSL://127.0.0.1:{port}",
        "inter.broker.listener.name": "SSL",
        "listener.security.protocol.map": "CONTROLLER:SSL,SSL:SSL",
        "ssl.client.auth": "required",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.key": tls.key_file.read_text(),
        "ssl.keystore.certificate.chain": tls.cert_file.read_text(),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_file),
        "ssl.principal.mapping.rules": PRINCIPAL_RULES,
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{tls.principal()};User:{OPERATOR}",
    }


def _escaped(value: str) -> str:
    """A value as a Java .properties line keeps it (PEM's newlines become ``\\n``)."""
    return value.replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")


def render(template: str, values: dict[str, str]) -> str:
    """The template with each key's line replaced, and the keys it lacks appended."""
    extra: list[str] = []
    for key, value in values.items():
        line = f"{key}={_escaped(value)}"
        pattern = re.compile(rf"(?m)^{re.escape(key)}=.*$")
        if pattern.search(template):
            template = pattern.sub(line.replace("\\", "\\\\"), template)  # a literal line
        else:
            extra.append(line)
    if extra:
        header = "\n# Written by `backbone infra up` (services/local_stack/kafka_config.py).\n"
        template = template.rstrip("\n") + "\n" + header + "\n".join(extra) + "\n"
    return template


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (the properties hold the broker's key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
