"""The API's composition root: one store, one read pool, the auth service, per process."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from events.settings import StoreSettings, get_store_settings
from events.store.application import ClinicalStore
from projections.engine.database import create_tables, read_pool
from projections.registry import ALL
from projections.settings import ProjectionSettings, get_projection_settings
from services.auth.service import AuthService
from services.bootstrap import build_key_pool, build_store, schema_lock
from services.departments.lab_routing import lab_routing
from services.departments.pharmacy import PROJECTION as PHARMACY
from services.settings import ServiceSettings, get_settings

# The API reads the department tables too (queue, inbox): create them if it starts first.
DEPARTMENT_TABLES = (*ALL, PHARMACY, lab_routing(frozenset()))


@dataclass
class Container:
    """Everything a request handler needs, built once when the app starts."""

    settings: ServiceSettings
    store_settings: StoreSettings
    projection_settings: ProjectionSettings
    store: ClinicalStore
    reads: ConnectionPool
    auth: AuthService

    def close(self) -> None:
        self.reads.close()
        self.auth.pool.close()
        self.store.close()


def build_container(
    settings: ServiceSettings | None = None,
    store_settings: StoreSettings | None = None,
    projection_settings: ProjectionSettings | None = None,
) -> Container:
    settings = settings or get_settings()
    store_settings = store_settings or get_store_settings()
    projection_settings = projection_settings or get_projection_settings()
    store = build_store(store_settings)
    reads = read_pool(projection_settings, max_size=16)
    with reads.connection() as conn:
        create_tables(conn, projection_settings.read_schema, DEPARTMENT_TABLES)
    auth_pool = build_key_pool(store_settings)
    with schema_lock(auth_pool):
        auth = AuthService(store, auth_pool, settings)
    return Container(settings, store_settings, projection_settings, store, reads, auth)
