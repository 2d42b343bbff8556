"""Settings of the read side, read from ``BACKBONE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class ProjectionSettings(BaseSettings):
    """Where the read tables live and how the runners consume Kafka."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    database_url: str = "postgresql://backbone:backbone@127.0.0.1:55432/backbone"
    kafka_bootstrap: str = "127.0.0.1:9092"
    read_schema: str = "read"
    store_name: str = "clinical"
    consumer_group_prefix: str = "projection"
    projection_max_poll_records: int = 500
    projection_wait_timeout_s: float = 2.0


@lru_cache(maxsize=1)
def get_projection_settings() -> ProjectionSettings:
    """The process-wide read-side settings, read once."""
    return ProjectionSettings()
