"""The API's parts: the process's ``Backbone``, with the read tables it serves ready.

Two read pools (docs/scaling.md): ``replica_reads`` (the read replica, or the primary
without one) serves the views that may lag and waits there for ``min_position``: the chart,
patient search, inbox, pharmacy queue, care team, FHIR read, search and ``$everything``.
``reads`` (the primary) serves what must see the latest write or writes itself: compliance's
audit and alerts (a break-glass answer waits until its alert is visible there), readiness,
the reads that decide a write (acknowledging, verifying), as-of charts and FHIR history
(they replay into temporary tables, which a hot standby cannot create) and Bulk Data export
(its jobs table)."""

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
