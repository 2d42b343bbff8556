"""Settings of the services package, read from ``BACKBONE_*`` environment variables.

Defaults work with ``backbone infra up`` on a developer machine; outside development,
placeholder secrets are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceSettings(BaseSettings):
    """Where the local infrastructure lives and how the processes reach it."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    environment: str = "development"
    data_dir: Path = REPO_ROOT / ".data"
    infra_dir: Path = REPO_ROOT / "infra"

    database_url: str = "postgresql://backbone:backbone@127.0.0.1:55432/backbone"
    postgres_port: int = 55432
    postgres_db: str = "backbone"
    postgres_user: str = "backbone"
    postgres_password: str = "backbone"  # noqa: S105 - development default, refused elsewhere

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_start_timeout_s: float = 90.0

    log_level: str = Field(default="INFO")

    relay_name: str = "relay"
    relay_batch_size: int = 500
    relay_poll_interval_s: float = 0.1
    relay_flush_timeout_s: float = Field(default=8.0, ge=2.0)
    relay_max_backoff_s: float = 10.0

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process-wide settings, read once."""
    return ServiceSettings()
