"""Settings of the write side, read from ``BACKBONE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class StoreSettings(BaseSettings):
    """Where the event store lives and how its payloads are encrypted."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    environment: str = "development"
    database_url: str = "postgresql://backbone:backbone@127.0.0.1:55432/backbone"
    master_key_file: Path = REPO_ROOT / ".data" / "keys" / "master.key"
    checkpoint_key_file: Path = REPO_ROOT / ".data" / "keys" / "checkpoint.key"
    # Signed checkpoints are appended here too, outside the database (``<store>.jsonl``):
    # in production a directory the database's administrators cannot write.
    witness_dir: Path = REPO_ROOT / ".data" / "witness"
    # The key of hashed ids (MRN index, usernames), kept apart from the master key so that
    # rotating the master key leaves every id as it was. Unset: ``ids.key`` beside the
    # master key file.
    id_key_file: Path | None = None
    # Encrypts backups; kept away from the backups and never the master key.
    backup_key_file: Path = REPO_ROOT / ".data" / "keys" / "backup.key"
    store_name: str = "clinical"
    store_pool_size: int = 5
    store_pool_overflow: int = 10
    store_lock_timeout_s: int = 5
    key_cache_ttl_s: float = 5.0
    # How long those an encounter brought onto a care team stay after it ends or moves away.
    care_team_grace_hours: float = 24.0

    @property
    def id_key_path(self) -> Path:
        """Where the key of hashed ids lives (beside the master key unless set)."""
        return self.id_key_file or self.master_key_file.with_name("ids.key")


@lru_cache(maxsize=1)
def get_store_settings() -> StoreSettings:
    """The process-wide store settings, read once."""
    return StoreSettings()
