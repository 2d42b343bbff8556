"""Read and search for every served kind, and ``Patient/{id}/$everything``.

Clinical kinds are searched within one patient's record (``patient`` or ``subject``): each
named patient is opened with the chart's rules (care team or break-glass, every read
recorded as ``chart.viewed`` section ``fhir`` with the ``X-Purpose-Of-Use`` header's
purpose), and rows of the records merged into it come along. Patients are searched by
identifier, name, birth date or gender by the roles that may search ``/v1/patients``."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request

from events.commands.access import RecordChartView
from services.api.container import Container
from services.api.deps import ContainerDep, CurrentUser, GuardsDep, command_context
from services.api.fhir.access import DEFAULT_PURPOSE, open_patient, require_clinician
from services.api.fhir.responses import BASE_PATH, FhirJSONResponse
from services.auth.service import Principal
from services.fhir import bundles, search
from services.fhir.kinds import Kind
from services.fhir.outcomes import FhirError
from services.fhir.resources import KINDS

router = APIRouter()

# Who may search Patient by demographics: the roles of ``GET /v1/patients``.
PATIENT_SEARCHERS = frozenset({"front_desk", "nurse", "physician", "pharmacist", "billing"})
EVERYTHING_PARAMS = frozenset({"_type", "_since"})
Purpose = Annotated[str, Header(alias="X-Purpose-Of-Use", max_length=100)]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


def kind_named(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        raise FhirError(404, f"resource type {name} is not served here", code="not-supported")
    return kind


def resource_uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise FhirError(404, f"no resource with id {raw}", code="not-found") from None


def _open(
    container: Container, user: Principal, patients: frozenset[UUID], purpose: str
) -> list[UUID]:
    """Every id whose rows the caller may see among ``patients`` (403 for any it may not)."""
    allowed: list[UUID] = []
    for patient in sorted(patients):
        survivor, merged = open_patient(container, user, patient, purpose)
        allowed.extend((survivor, *merged))
    return allowed


def _search_patients(
    container: Container, guards: Any, user: Principal, request: search.SearchRequest, purpose: str
) -> tuple[list[dict[str, Any]], UUID | None]:
    if request.patients is not None:
        return _search_within(container, user, request, purpose)
    if not request.conditions:
        raise FhirError(400, "a Patient search needs a parameter", code="required")
    guards.rates.hit("search", str(user.user_id))
    with container.replica_reads.connection() as conn:
        found, cursor = search.run(conn, request, None)
    for patient in found:
        container.store.record_chart_view(
            command_context(user), RecordChartView(UUID(patient["id"]), "fhir", purpose, False)
        )
    return found, cursor


def _search_within(
    container: Container, user: Principal, request: search.SearchRequest, purpose: str
) -> tuple[list[dict[str, Any]], UUID | None]:
    if request.patients is None:
        raise FhirError(
            400,
            f"a {request.kind.name} search needs patient or subject",
            code="required",
            expression=["patient"],
        )
    allowed = _open(container, user, request.patients, purpose)
    with container.replica_reads.connection() as conn:
        return search.run(conn, request, allowed)


@router.get("/{resource_type}")
def search_type(
    resource_type: str,
    request: Request,
    container: ContainerDep,
    guards: GuardsDep,
    user: CurrentUser,
    purpose: Purpose = DEFAULT_PURPOSE,
) -> FhirJSONResponse:
    """Search one resource type (a searchset Bundle, paged with ``_count`` and ``next``)."""
    kind = kind_named(resource_type)
    # The role is checked before the parameters: a refused role learns nothing of them.
    if kind.patient_scoped:
        require_clinician(user)
    elif user.role not in PATIENT_SEARCHERS:
        raise FhirError(403, f"the {user.role} role may not search patients")
    items = request.query_params.multi_items()
    parsed = search.parse(kind, items)
    if kind.patient_scoped:
        found, cursor = _search_within(container, user, parsed, purpose)
    else:
        found, cursor = _search_patients(container, guards, user, parsed, purpose)
    base = base_url(request)
    next_url = None
    if cursor is not None:
        next_url = bundles.page_url(base, kind.name, [*parsed.query, ("_cursor", str(cursor))])
    self_url = bundles.page_url(base, kind.name, items)
    return FhirJSONResponse(bundles.searchset(base, found, self_url, next_url))


@router.get("/{resource_type}/{resource_id}")
def read(
    resource_type: str,
    resource_id: str,
    container: ContainerDep,
    user: CurrentUser,
    purpose: Purpose = DEFAULT_PURPOSE,
) -> FhirJSONResponse:
    """Read one resource by id (care team or break-glass; the read is audited)."""
    kind = kind_named(resource_type)
    wanted = resource_uuid(resource_id)
    id_is = search.parse(kind, [("_id", str(wanted))]).conditions
    with container.replica_reads.connection() as conn:
        found = search.owner(conn, kind, wanted)
    if found is None:
        raise FhirError(404, f"{kind.name}/{resource_id} is not known", code="not-found")
    allowed = _open(container, user, frozenset({found}), purpose)
    with container.replica_reads.connection() as conn:
        resources = search.fetch(conn, kind, id_is, allowed, limit=1)
    if not resources:  # erased between the two reads
        raise FhirError(404, f"{kind.name}/{resource_id} is not known", code="not-found")
    return FhirJSONResponse(resources[0])


@router.get("/Patient/{patient_id}/$everything")
def everything(
    patient_id: str,
    request: Request,
    container: ContainerDep,
    user: CurrentUser,
    purpose: Purpose = DEFAULT_PURPOSE,
) -> FhirJSONResponse:
    """Everything in one patient's record (and the records merged into it), as a Bundle."""
    query = request.query_params
    unknown = sorted(set(query) - EVERYTHING_PARAMS)
    if unknown:
        raise FhirError(
            400, f"$everything does not take {', '.join(unknown)}", code="not-supported"
        )
    kinds = list(KINDS.values())
    if query.get("_type"):
        kinds = [kind_named(t.strip()) for t in query["_type"].split(",") if t.strip()]
    since = search.since_of(query.get("_since"))
    allowed = _open(container, user, frozenset({resource_uuid(patient_id)}), purpose)
    with container.replica_reads.connection() as conn:
        found = [
            r for kind in kinds for r in search.scan(conn, kind, since=since, patients=allowed)
        ]
    base = base_url(request)
    self_url = bundles.page_url(base, f"Patient/{patient_id}/$everything", query.multi_items())
    return FhirJSONResponse(bundles.searchset(base, found, self_url, total=len(found)))
