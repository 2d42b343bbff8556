"""AuditEvent from the access log: search by ``patient``, ``agent`` and ``date``, and read
by id; the compliance role only. Like ``/v1/audit/access``, an answer waits (bounded) until
the log holds every access recorded before the request, and reading it is itself recorded."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from events.commands.access import RecordAuditRead
from services.api.container import Container
from services.api.deps import ContainerDep, rate_limit, require
from services.api.fhir.resources import base_url, resource_uuid
from services.api.fhir.responses import FhirJSONResponse
from services.api.routes.audit import audited, catch_up
from services.auth.service import Principal
from services.fhir import bundles, search
from services.fhir.outcomes import FhirError
from services.fhir.resources.audit_event import AUDIT_EVENT

router = APIRouter()
Compliance = Annotated[Principal, Depends(require("compliance"))]
LIMITED = [Depends(rate_limit("exports"))]


def _one(ids: frozenset[UUID] | None) -> UUID | None:
    return next(iter(ids)) if ids is not None and len(ids) == 1 else None


def _record(container: Container, user: Principal, found: int, req: search.SearchRequest) -> None:
    audited(container, user, RecordAuditRead("access_log", _one(req.patients), None, found))


@router.get("/AuditEvent", dependencies=LIMITED)
def search_audit_events(
    request: Request, container: ContainerDep, user: Compliance
) -> FhirJSONResponse:
    """Who read or was refused which patient's data, when, with what purpose and role."""
    items = request.query_params.multi_items()
    parsed = search.parse(AUDIT_EVENT, items)
    catch_up(container)
    patients = sorted(parsed.patients) if parsed.patients is not None else None
    with container.reads.connection() as conn:
        found, cursor = search.run(conn, parsed, patients)
    _record(container, user, len(found), parsed)
    base = base_url(request)
    next_url = None
    if cursor is not None:
        next_url = bundles.page_url(base, "AuditEvent", [*parsed.query, ("_cursor", str(cursor))])
    self_url = bundles.page_url(base, "AuditEvent", items)
    return FhirJSONResponse(bundles.searchset(base, found, self_url, next_url))


@router.get("/AuditEvent/{event_id}", dependencies=LIMITED)
def read_audit_event(event_id: str, container: ContainerDep, user: Compliance) -> FhirJSONResponse:
    """One AuditEvent by id."""
    wanted = resource_uuid(event_id)
    id_is = search.parse(AUDIT_EVENT, [("_id", str(wanted))])
    catch_up(container)
    with container.reads.connection() as conn:
        found = search.fetch(conn, AUDIT_EVENT, id_is.conditions, None, limit=1)
    if not found:
        raise FhirError(404, f"AuditEvent/{event_id} is not known", code="not-found")
    _record(container, user, 1, id_is)
    return FhirJSONResponse(found[0])
