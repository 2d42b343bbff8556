"""The read-replica URL: unset or empty means the primary; set, it verifies the server like
every database URL and connects as the service's own role, as the primary's URL does."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from events.settings import StoreSettings
from projections.settings import ProjectionSettings
from services.bootstrap import Backbone
from services.database_roles import API, ensure_passwords
from services.settings import ServiceSettings

REPLICA = "postgresql://backbone:backbone@replica.example:5432/backbone"


def test_no_replica_url_means_the_primary(tmp_path: Path) -> None:
    assert ProjectionSettings(tls_dir=tmp_path).read_replica_url is None
    assert ProjectionSettings(tls_dir=tmp_path, read_replica_url="").read_replica_url is None


def test_the_replica_url_verifies_the_server(tmp_path: Path) -> None:
    settings = ProjectionSettings(tls_dir=tmp_path, read_replica_url=REPLICA)
    assert settings.read_replica_url is not None
    info = conninfo_to_dict(settings.read_replica_url)
    assert (info["host"], info["sslmode"], info["sslrootcert"]) == (
        "replica.example",
        "verify-full",
        str(tmp_path / "ca.pem"),
    )


def test_a_service_reaches_the_replica_as_its_own_role(tmp_path: Path) -> None:
    roles = tmp_path / "roles.json"
    passwords = ensure_passwords(roles)
    backbone = Backbone(
        ServiceSettings(tls_dir=tmp_path, database_roles_file=roles),
        StoreSettings(tls_dir=tmp_path),
        ProjectionSettings(tls_dir=tmp_path, read_replica_url=REPLICA),
        database_role="api",
    )
    url = backbone.projection_settings.read_replica_url
    assert url is not None
    info = conninfo_to_dict(url)
    assert (info["host"], info["user"], info["password"]) == (
        "replica.example",
        API.role,
        passwords[API.role],
    )
    assert conninfo_to_dict(backbone.projection_settings.database_url)["user"] == API.role
