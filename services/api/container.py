"""The API's parts: the process's ``Backbone``, with the read tables it serves ready."""

from __future__ import annotations

from events.settings import StoreSettings
from projections.engine.database import create_tables
from projections.registry import ALL
from projections.settings import ProjectionSettings
from services.bootstrap import Backbone
from services.departments.lab_routing import lab_routing
from services.departments.pharmacy import PROJECTION as PHARMACY
from services.settings import ServiceSettings

# The API reads the department tables too (queue, inbox): create them if it starts first.
DEPARTMENT_TABLES = (*ALL, PHARMACY, lab_routing(frozenset()))

Container = Backbone


def build_container(
    settings: ServiceSettings | None = None,
    store_settings: StoreSettings | None = None,
    projection_settings: ProjectionSettings | None = None,
    database_role: str | None = None,
) -> Backbone:
    """Everything a request handler needs, built once when the app starts (``database_role``:
    ``api`` in ``backbone serve``; the owner's URL in tests that build the app in-process)."""
    backbone = Backbone(
        settings,
        store_settings,
        projection_settings,
        reads_size=16,
        kafka_principal="api",
        database_role=database_role,
    )
    with backbone.reads.connection() as conn:
        create_tables(conn, backbone.projection_settings.read_schema, DEPARTMENT_TABLES)
    backbone.store  # noqa: B018 - built now, so the first request does not pay for it
    backbone.auth  # noqa: B018
    return backbone
