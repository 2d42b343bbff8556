"""How every Kafka client of the backbone connects: one place, for one principal.

The broker takes TLS only and authenticates clients by certificate; the certificate's
common name is the client's principal (``services/principals.py`` lists them and their
ACLs). Each process says which principal it is (``BACKBONE_KAFKA_PRINCIPAL``, or its own
default: the relay is ``relay``, ``backbone project`` is ``projections``, tools and tests
are ``operator``) and builds its producers, consumers and admin clients from
``kafka_connection(settings).client_kwargs()``, and addresses this deployment's topics
through its ``topics`` (``BACKBONE_TOPIC_PREFIX``, ``events.domain.topics.TopicNames``).

Files follow the local CA's layout (``backbone certs init``) under ``BACKBONE_TLS_DIR``:
``ca.pem`` and ``clients/<principal>.pem`` / ``.key``. An operator with their own PKI sets
``BACKBONE_KAFKA_CA_FILE`` (or ``BACKBONE_TLS_CA_FILE``, every client's CA) and, for the
process's own principal, ``BACKBONE_KAFKA_CERT_FILE`` and ``BACKBONE_KAFKA_KEY_FILE`` (or
points ``BACKBONE_TLS_DIR`` at files in that layout).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from events.domain.topics import TopicNames

OPERATOR = "operator"
SecurityProtocol = Literal["SSL", "PLAINTEXT"]


class KafkaClientSettings(Protocol):
    """The settings fields a Kafka connection is made from (services' and projections')."""

    @property
    def kafka_bootstrap(self) -> str: ...
    @property
    def kafka_security_protocol(self) -> SecurityProtocol: ...
    @property
    def kafka_principal(self) -> str | None: ...
    @property
    def tls_dir(self) -> Path: ...
    @property
    def tls_ca_file(self) -> Path | None: ...
    @property
    def kafka_ca_file(self) -> Path | None: ...
    @property
    def kafka_cert_file(self) -> Path | None: ...
    @property
    def kafka_key_file(self) -> Path | None: ...
    @property
    def kafka_check_hostname(self) -> bool: ...
    @property
    def topic_names(self) -> TopicNames: ...


def ca_file(tls_dir: Path) -> Path:
    """The local CA's certificate in the layout of ``backbone certs init``."""
    return tls_dir / "ca.pem"


def client_files(tls_dir: Path, principal: str) -> tuple[Path, Path]:
    """A principal's certificate and key in the layout of ``backbone certs init``."""
    return tls_dir / "clients" / f"{principal}.pem", tls_dir / "clients" / f"{principal}.key"


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are, the TLS material one principal connects with, and the names
    of this deployment's topics there (``topics.of(PATIENTS.name)``)."""

    principal: str
    bootstrap: str
    security_protocol: SecurityProtocol
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    check_hostname: bool = True
    topics: TopicNames = field(default_factory=TopicNames)

    @property
    def tls(self) -> bool:
        return self.security_protocol == "SSL"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of kafka-python's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            kwargs.update(
                ssl_cafile=_text(self.ca_file),
                ssl_certfile=_text(self.cert_file),
                ssl_keyfile=_text(self.key_file),
                ssl_check_hostname=self.check_hostname,
            )
        return kwargs

    def missing_files(self) -> list[Path]:
        """The TLS files that are not there (a client would fail on its first connection)."""
        if not self.tls:
            return []
        files = (self.ca_file, self.cert_file, self.key_file)
        return [f for f in files if f is not None and not f.is_file()]

    def as_json(self) -> dict[str, Any]:
        """``backbone kafka client-config --json``: the principal and kafka-python's keywords
        (docs/examples/department_consumer.py reads this with ``--client-config``)."""
        return {"principal": self.principal, **self.client_kwargs()}

    def kcat(self) -> str:
        """A kcat command line that connects as this principal."""
        args = ["kcat", "-b", self.bootstrap]
        if self.tls:
            args += ["-X", "security.protocol=ssl"]
            args += ["-X", f"ssl.ca.location={_text(self.ca_file)}"]
            args += ["-X", f"ssl.certificate.location={_text(self.cert_file)}"]
            args += ["-X", f"ssl.key.location={_text(self.key_file)}"]
            if not self.check_hostname:
                args += ["-X", "ssl.endpoint.identification.algorithm=none"]
        return shlex.join(args)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def kafka_connection(
    settings: KafkaClientSettings, principal: str | None = None, *, default: str = OPERATOR
) -> KafkaConnection:
    """The connection of ``principal``, or of the process's principal
    (``BACKBONE_KAFKA_PRINCIPAL``, else ``default``).

    ``BACKBONE_KAFKA_CERT_FILE`` / ``_KEY_FILE`` are the process's own certificate: they are
    used for its principal only; any other principal's files come from the TLS directory."""
    own = settings.kafka_principal or default
    name = principal or own
    cert, key = client_files(settings.tls_dir, name)
    if name == own:
        cert = settings.kafka_cert_file or cert
        key = settings.kafka_key_file or key
    return KafkaConnection(
        principal=name,
        bootstrap=settings.kafka_bootstrap,
        security_protocol=settings.kafka_security_protocol,
        ca_file=settings.kafka_ca_file or settings.tls_ca_file or ca_file(settings.tls_dir),
        cert_file=cert,
        key_file=key,
        check_hostname=settings.kafka_check_hostname,
        topics=settings.topic_names,
    )
