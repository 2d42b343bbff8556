"""Settings of the read side, read from ``BACKBONE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from events.settings import DatabaseSettings, TopicSettings
from projections.engine.kafka_clients import SecurityProtocol

REPO_ROOT = Path(__file__).resolve().parent.parent


class ProjectionSettings(DatabaseSettings, TopicSettings):
    """Where the read tables live and how the runners consume Kafka."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka over TLS with this process's client certificate (projections/engine/kafka_clients.py);
    # the same variables as the services' settings.
    kafka_security_protocol: SecurityProtocol = "SSL"
    kafka_principal: str | None = None
    tls_dir: Path = REPO_ROOT / ".data" / "tls"
    tls_ca_file: Path | None = None
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    kafka_check_hostname: bool = True
    # The key service (``backbone keys serve``) that answers payload keys to this process's
    # principal over mutual TLS, with the Kafka client certificate; keys cached this long.
    key_service_host: str = "127.0.0.1"
    key_service_port: int = 8444
    key_client_cache_ttl_s: float = 60.0
    read_schema: str = "read"
    store_name: str = "clinical"
    consumer_group_prefix: str = "projection"
    projection_max_poll_records: int = 500
    projection_wait_timeout_s: float = 2.0

    @property
    def key_service_url(self) -> str:
        return f"https://{self.key_service_host}:{self.key_service_port}"


@lru_cache(maxsize=1)
def get_projection_settings() -> ProjectionSettings:
    """The process-wide read-side settings, read once."""
    return ProjectionSettings()
