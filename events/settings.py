"""Settings of the write side, read from ``BACKBONE_*`` environment variables.

``DatabaseSettings`` is the database part every package's settings share (events is the
lowest package, so services and projections import it from here): each URL verifies the
server's certificate unless the operator chose an ``sslmode`` of their own. ``TopicSettings``
is the Kafka topic prefix the services' and projections' settings share.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.domain.topics import TopicNames

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://backbone:backbone@127.0.0.1:55432/backbone"


def verified_database_url(url: str, ca_file: Path) -> str:
    """``url`` with ``sslmode=verify-full`` and ``sslrootcert=ca_file`` added, unless it
    names an ``sslmode`` itself (the operator's explicit choice is kept as given)."""
    info = conninfo_to_dict(url)
    if "sslmode" in info:
        return url
    extra = {"sslmode": "verify-full"}
    if "sslrootcert" not in info:
        extra["sslrootcert"] = str(ca_file)
    if "://" not in url:
        return make_conninfo(url, **extra)
    base, _, fragment = url.partition("#")
    query = urlencode(extra, quote_via=quote, safe="/")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}#{fragment}" if fragment else joined


class DatabaseSettings(BaseSettings):
    """The PostgreSQL URL, over TLS verified against a CA: the local one (``backbone
    certs init``) unless ``BACKBONE_DATABASE_CA_FILE`` or ``BACKBONE_TLS_CA_FILE`` names
    another."""

    database_url: str = DEFAULT_DATABASE_URL
    # The local CA, the servers' certificate and each principal's client certificate.
    tls_dir: Path = REPO_ROOT / ".data" / "tls"
    tls_ca_file: Path | None = None
    database_ca_file: Path | None = None

    @property
    def database_ca_path(self) -> Path:
        """The CA file the database server's certificate is verified against."""
        return self.database_ca_file or self.tls_ca_file or self.tls_dir / "ca.pem"

    @model_validator(mode="after")
    def _verify_the_server(self) -> Self:
        self.database_url = verified_database_url(self.database_url, self.database_ca_path)
        return self


class TopicSettings(BaseSettings):
    """This deployment's Kafka topic prefix (``BACKBONE_TOPIC_PREFIX``, empty by default:
    the documented ``clinical.*`` names). Deployments sharing a cluster (a test session, a
    bench run, another site) each take their own, e.g. ``site-b.``."""

    topic_prefix: str = ""

    @field_validator("topic_prefix")
    @classmethod
    def _legal_prefix(cls, value: str) -> str:
        TopicNames(value)  # raises ValueError naming what Kafka would refuse
        return value

    @property
    def topic_names(self) -> TopicNames:
        """The Kafka topic names of this deployment."""
        return TopicNames(self.topic_prefix)


class StoreSettings(DatabaseSettings):
    """Where the event store lives and how its payloads are encrypted."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    environment: str = "development"
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
