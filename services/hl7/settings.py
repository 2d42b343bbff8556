"""Settings of the HL7 v2 listener and client, read from ``BACKBONE_HL7_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.settings import LOOPBACK_HOSTS, REPO_ROOT, Refused

DEFAULT_TRANSLATOR = "services.hl7.translate:translate"


class HL7Settings(BaseSettings):
    """Where the MLLP listener listens and how much work it takes on at once."""

    model_config = SettingsConfigDict(
        env_prefix="BACKBONE_HL7_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)  # 0: any free port (tests)
    # Plain MLLP has neither encryption nor authentication: off loopback only on purpose
    # (behind a VPN or a TLS-terminating proxy).
    allow_remote: bool = False
    # MLLP over TLS: the server certificate below, and a client certificate from the CA
    # required of every sender, its common name the sender's MSH-3|MSH-4. Any host then.
    tls: bool = False
    # The local CA's directory (BACKBONE_TLS_DIR, shared with services.settings); the
    # files below default to its server certificate, key and CA.
    tls_dir: Path = Field(default=REPO_ROOT / ".data" / "tls", validation_alias="BACKBONE_TLS_DIR")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None  # signs the senders' certificates; clients verify with it
    # Worker queues: messages of one patient go to one queue and are applied in arrival
    # order; the queues run in parallel, each on a thread of the pool.
    workers: int = Field(default=8, ge=1, le=64)
    max_message_bytes: int = Field(default=1024 * 1024, ge=4096)
    idle_timeout_s: float = Field(default=600.0, gt=0)
    drain_timeout_s: float = Field(default=20.0, ge=0)
    # Our name in an ACK's MSH-3 when the message's MSH-5 (receiving application) is empty.
    application: str = "BACKBONE"
    # The translation of messages into commands, as ``module:function``.
    translator: str = DEFAULT_TRANSLATOR
    # The ``backbone hl7 send`` client: how long to wait for the ACK.
    send_timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> HL7Settings:
        if self.host not in LOOPBACK_HOSTS and not (self.allow_remote or self.tls):
            raise ValueError(
                f"BACKBONE_HL7_HOST={self.host}: plain MLLP is neither encrypted nor "
                "authenticated; it listens on loopback unless BACKBONE_HL7_TLS=true "
                "(or BACKBONE_HL7_ALLOW_REMOTE=true behind a VPN or TLS proxy)"
            )
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def certificate(self) -> tuple[Path, Path]:
        """The listener's certificate (its chain) and private key files."""
        return (
            self.tls_cert_file or self.tls_dir / "server.pem",
            self.tls_key_file or self.tls_dir / "server.key",
        )

    @property
    def ca_file(self) -> Path:
        """The CA of the senders' certificates, which clients verify the listener with."""
        return self.tls_ca_file or self.tls_dir / "ca.pem"


@lru_cache(maxsize=1)
def get_hl7_settings() -> HL7Settings:
    """The process-wide HL7 settings, read once; refused settings stop the process."""
    try:
        return HL7Settings()
    except ValidationError as exc:
        raise Refused(exc) from None
