"""Settings of the read side, read from ``BACKBONE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from events.settings import DatabaseSettings, TopicSettings, verified_database_url
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
    # A read replica (hot standby) of the read schema's database: the API's reads of projected
    # views (charts, lists, FHIR reads and searches) go there, writes and read-your-writes
    # paths stay on database_url (docs/scaling.md). None: everything on database_url.
    # Verified like database_url; a service's role rewrite applies to it too.
    read_replica_url: str | None = None
    store_name: str = "clinical"
    consumer_group_prefix: str = "projection"
    projection_max_poll_records: int = 500
    projection_wait_timeout_s: float = 2.0

    @model_validator(mode="after")
    def _verify_the_replica(self) -> Self:
        if not self.read_replica_url:  # unset, or set empty: the primary
            self.read_replica_url = None
        else:
            self.read_replica_url = verified_database_url(
                self.read_replica_url, self.database_ca_path
            )
        return self

    @property
    def key_service_url(self) -> str:
        return f"https://{self.key_service_host}:{self.key_service_port}"


@lru_cache(maxsize=1)
def get_projection_settings() -> ProjectionSettings:
    """The process-wide read-side settings, read once."""
    return ProjectionSettings()
