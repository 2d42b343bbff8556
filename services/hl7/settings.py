"""Settings of the HL7 v2 listener and client, read from ``BACKBONE_HL7_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.settings import LOOPBACK_HOSTS, Refused

DEFAULT_TRANSLATOR = "services.hl7.translate:translate"


class HL7Settings(BaseSettings):
    """Where the MLLP listener listens and how much work it takes on at once."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_HL7_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)  # 0: any free port (tests)
    # Plain MLLP has neither encryption nor authentication: off loopback only on purpose
    # (behind a VPN or a TLS-terminating proxy).
    allow_remote: bool = False
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
        if self.host not in LOOPBACK_HOSTS and not self.allow_remote:
            raise ValueError(
                f"BACKBONE_HL7_HOST={self.host}: plain MLLP is neither encrypted nor "
                "authenticated; it listens on loopback unless BACKBONE_HL7_ALLOW_REMOTE=true "
                "(behind a VPN or TLS proxy)"
            )
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_hl7_settings() -> HL7Settings:
    """The process-wide HL7 settings, read once; refused settings stop the process."""
    try:
        return HL7Settings()
    except ValidationError as exc:
        raise Refused(exc) from None
