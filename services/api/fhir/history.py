"""Resource history from the store: ``{type}/{id}/_history`` and ``_history/{vid}``.

The roles that may read a patient's history on ``/v1`` (physician on the care team or with
break-glass, compliance) may read a resource's; each read is recorded as ``chart.viewed``
section ``history`` with its purpose, against the patient whose record holds it. Versions
and their Provenance come from ``services.fhir.history``."""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from events.commands.access import RecordChartView
from services.api.container import Container
from services.api.deps import ContainerDep, command_context, rate_limit, require
from services.api.fhir.access import chart_access
from services.api.fhir.resources import Purpose, base_url, kind_named, resource_uuid
from services.api.fhir.responses import FhirJSONResponse
from services.auth.service import Principal
from services.fhir import history, search
from services.fhir.kinds import Kind
from services.fhir.outcomes import FhirError

router = APIRouter()
Historian = Annotated[Principal, Depends(require("physician", "compliance"))]
LIMITED = [Depends(rate_limit("exports"))]


def _versions(
    container: Container, user: Principal, kind: Kind, resource_id: UUID, purpose: str
) -> list[history.Version]:
    with container.reads.connection() as conn:
        owner = search.owner(conn, kind, resource_id)
    if owner is None:
        raise FhirError(404, f"{kind.name}/{resource_id} is not known", code="not-found")
    survivor = container.store.survivor_of(owner)
    break_glass = chart_access(container, user, survivor) if user.role == "physician" else False
    with container.reads.connection() as conn:
        found = history.versions(conn, container.store, kind, resource_id, owner)
    container.store.record_chart_view(
        command_context(user), RecordChartView(survivor, "history", purpose, break_glass)
    )
    return found


@router.get("/{resource_type}/{resource_id}/_history", dependencies=LIMITED)
def resource_history(
    resource_type: str,
    resource_id: str,
    request: Request,
    container: ContainerDep,
    user: Historian,
    purpose: Purpose = "audit",
) -> FhirJSONResponse:
    """Every version of a resource, newest first, each with its Provenance (who, role,
    reason, recorded and clinical time): a ``history`` Bundle."""
    if request.query_params:
        unknown = ", ".join(sorted(request.query_params))
        raise FhirError(400, f"_history does not take {unknown}", code="not-supported")
    kind = kind_named(resource_type)
    wanted = resource_uuid(resource_id)
    found = _versions(container, user, kind, wanted, purpose)
    return FhirJSONResponse(history.history_bundle(base_url(request), kind, wanted, found))


@router.get("/{resource_type}/{resource_id}/_history/{version_id}", dependencies=LIMITED)
def resource_version(
    resource_type: str,
    resource_id: str,
    version_id: str,
    container: ContainerDep,
    user: Historian,
    purpose: Purpose = "audit",
) -> FhirJSONResponse:
    """One version of a resource as it read then (``meta.versionId``, ``lastUpdated``)."""
    kind = kind_named(resource_type)
    wanted = resource_uuid(resource_id)
    found = _versions(container, user, kind, wanted, purpose)
    number = int(version_id) if version_id.isdigit() else 0
    if not 1 <= number <= len(found):
        raise FhirError(
            404, f"{kind.name}/{resource_id} has no version {version_id}", code="not-found"
        )
    version = found[number - 1]
    if version.resource is None:
        raise FhirError(
            410, f"version {number} of {kind.name}/{resource_id} is a deletion", code="deleted"
        )
    modified = format_datetime(version.recorded_at.astimezone(UTC), usegmt=True)
    return FhirJSONResponse(
        version.resource, headers={"ETag": f'W/"{number}"', "Last-Modified": modified}
    )
