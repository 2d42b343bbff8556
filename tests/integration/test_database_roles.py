"""A PostgreSQL role per service, on a migrated store: what each may and may not do.

The store and its read schema are the test's own; the roles are the local cluster's
(``backbone infra up`` made them), granted on this store by ``migrate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from events.settings import StoreSettings
from services.bootstrap import Backbone, role_url
from services.database_roles import SERVICE_ROLES
from services.migration import migrate
from services.settings import get_settings
from tests.integration.projection_harness import isolated_settings
from tests.integration.test_store_postgres import register as register_patient

pytestmark = pytest.mark.integration


@pytest.fixture
def migrated(store_settings: StoreSettings) -> Iterator[Backbone]:
    """A store and read schema made by the migration role, the roles granted on them."""
    backbone = Backbone(store_settings=store_settings)
    backbone.projection_settings = isolated_settings(store_settings)
    migrate(backbone)
    yield backbone
    backbone.close()


def connect(backbone: Backbone, service: str) -> psycopg.Connection[Any]:
    url = role_url(get_settings(), service)(backbone.store_settings.database_url)
    return psycopg.connect(url, autocommit=True)


def events_of(backbone: Backbone) -> sql.Identifier:
    return sql.Identifier(f"{backbone.store_settings.store_name}_events")


def refused(conn: psycopg.Connection[Any], statement: sql.Composed | sql.SQL) -> str:
    """The message PostgreSQL refuses ``statement`` with (the test fails if it runs)."""
    with pytest.raises(errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    return str(caught.value)


def register(backbone: Backbone) -> UUID:
    return register_patient(backbone.store, f"ROLE-{backbone.store_settings.store_name}")


def test_the_api_role_appends_events_but_cannot_rewrite_or_empty_the_record(
    migrated: Backbone,
) -> None:
    api = Backbone(store_settings=migrated.store_settings, database_role="api")
    try:
        register(api)  # appends as backbone_api: INSERT, and the table lock it takes
        assert api.store_settings.database_url != migrated.store_settings.database_url
    finally:
        api.close()
    events = events_of(migrated)
    with connect(migrated, "api") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("backbone_api",)
        assert "INSERT-only" in refused(conn, sql.SQL("UPDATE {} SET topic = topic").format(events))
        assert "permission denied" in refused(conn, sql.SQL("DELETE FROM {}").format(events))
        assert "permission denied" in refused(conn, sql.SQL("TRUNCATE {}").format(events))
        # Not the owner: the INSERT-only triggers stay, whatever the role tries.
        assert "must be owner" in refused(
            conn, sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(events)
        )
        assert "must be owner" in refused(conn, sql.SQL("DROP TABLE {}").format(events))
        assert "permission denied" in refused(conn, sql.SQL("CREATE TABLE public.sneaky (x int)"))
    with connect(migrated, "api") as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(events)).fetchone()
    assert row is not None and row[0] >= 1  # everything written is still there


def test_no_service_role_owns_a_table_of_the_store(migrated: Backbone) -> None:
    roles = [r.role for r in SERVICE_ROLES]
    with migrated.pool.connection() as conn:
        owned = conn.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE %s AND tableowner = ANY(%s)",
            (f"{migrated.store_settings.store_name}%", roles),
        ).fetchall()
    assert owned == []


def test_the_projections_role_owns_the_read_schema_and_cannot_read_the_store(
    migrated: Backbone,
) -> None:
    schema = migrated.projection_settings.read_schema
    with migrated.reads.connection() as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    assert owners == [("backbone_projections",)]
    with connect(migrated, "projections") as conn:
        assert "permission denied" in refused(
            conn, sql.SQL("SELECT * FROM {}").format(events_of(migrated))
        )
        assert "permission denied" in refused(
            conn,
            sql.SQL("SELECT * FROM {}").format(
                sql.Identifier(f"{migrated.store_settings.store_name}_data_keys")
            ),
        )
        conn.execute(sql.SQL("CREATE TABLE {}.mine (x int)").format(sql.Identifier(schema)))


def test_readers_of_the_read_schema_cannot_change_the_projections_tables(
    migrated: Backbone,
) -> None:
    patients = sql.Identifier(migrated.projection_settings.read_schema, "patients")
    items = sql.Identifier(migrated.projection_settings.read_schema, "pharmacy_items")
    for service in ("api", "hl7", "departments"):
        with connect(migrated, service) as conn:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(patients))
            assert "permission denied" in refused(conn, sql.SQL("DELETE FROM {}").format(patients))
    with connect(migrated, "departments") as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE false").format(items))  # its own table
    with connect(migrated, "api") as conn:
        assert "permission denied" in refused(conn, sql.SQL("DELETE FROM {}").format(items))


def test_the_relay_and_key_service_only_read_the_record(migrated: Backbone) -> None:
    events = events_of(migrated)
    for service in ("relay", "keys"):
        with connect(migrated, service) as conn:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(events))
            assert "permission denied" in refused(
                conn,
                sql.SQL("INSERT INTO {} SELECT * FROM {} LIMIT 0").format(events, events),
            )
            assert "permission denied" in refused(
                conn,
                sql.SQL("SELECT * FROM auth_credentials"),
            )
    with connect(migrated, "relay") as conn:
        conn.execute("UPDATE relay_checkpoints SET name = name WHERE false")


def test_a_service_on_its_role_makes_no_tables_and_says_what_is_missing(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    """Never migrated: the service's role may not create the tables, and says so."""
    api = Backbone(store_settings=store_settings, database_role="api")
    try:
        with pytest.raises(psycopg.Error) as caught:
            register(api)
        assert "does not exist" in str(caught.value)
    finally:
        api.close()
