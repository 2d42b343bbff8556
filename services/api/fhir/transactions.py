"""POST /fhir/R4: transaction and batch Bundles turned into typed commands.

Each entry is imported as ``backbone fhir import`` would (``services.fhir.importing``),
under the caller's account, with the ``/v1`` rules: registering and starting encounters
for front desk, nurses, physicians and administrators; vital signs and allergies for
nurses and physicians; lab orders and prescriptions for physicians; every clinical write
only on the patient's care team. The answer has one entry per input entry, in order.

A ``transaction`` is checked whole before anything is written (a resource type that is
not imported, a role or care-team refusal: the whole Bundle is refused); its commands
then run one by one, each idempotent on the entry's identity, so sending it again after a
failure half-way completes it without storing anything twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from events.commands.base import CommandContext
from services.api.container import Container
from services.api.deps import ContainerDep, CurrentUser, patient_access
from services.api.fhir.responses import FhirJSONResponse
from services.api.problems import Forbidden
from services.auth.service import Principal
from services.fhir.importing.plan import plan
from services.fhir.importing.reader import NotFhir, Source, read_bundle
from services.fhir.importing.report import Line, Status
from services.fhir.importing.run import Importer, subject_of
from services.fhir.importing.steps import Refused
from services.fhir.outcomes import FhirError, issue, operation_outcome

# The route is at the FHIR base itself (``POST /fhir/R4``): a path FastAPI does not let an
# included router have, so ``install`` adds it to the base router (see ``__init__``).
router = APIRouter()

WRITERS = {
    "register": frozenset({"front_desk", "nurse", "physician", "admin"}),
    "encounter": frozenset({"front_desk", "nurse", "physician", "admin"}),
    "vitals": frozenset({"nurse", "physician"}),
    "allergy": frozenset({"nurse", "physician"}),
    "lab": frozenset({"physician"}),
    "medication": frozenset({"physician"}),
}
LOCATED = frozenset(
    {"Patient", "Encounter", "DiagnosticReport", "MedicationRequest", "AllergyIntolerance"}
)


def _permit(user: Principal) -> Callable[[str], None]:
    def check(what: str) -> None:
        if user.role not in WRITERS[what]:
            raise Refused(403, f"the {user.role} role may not write this ({what})")

    return check


def _guard(container: Container, user: Principal) -> Callable[[UUID], None]:
    def check(patient_id: UUID) -> None:
        try:
            patient_access(container, user, patient_id)
        except Forbidden as exc:
            raise Refused(403, str(exc)) from exc

    return check


def _kinds(source: Source) -> dict[int, str]:
    """What each entry's commands do (for the role check), by entry index."""
    found: dict[int, str] = {}
    planned = plan(source.entries)
    for entry in planned.patients:
        found[entry.index] = "register"
    works = [w for vs in planned.visits.values() for v in vs for w in v.work]
    works += [w for ws in planned.loose.values() for w in ws]
    for visits in planned.visits.values():
        for visit in visits:
            found[visit.entry.index] = "encounter"
    for work in works:
        for entry in (work.entry, *work.results):
            found[entry.index] = work.kind
    return found


def _check_transaction(container: Container, user: Principal, source: Source) -> None:
    """Refuse a transaction before anything runs: a type not imported, a role that may
    not write an entry, an existing patient whose care team the caller is not on."""
    planned = plan(source.entries)
    if planned.unmappable:
        entry, reason = planned.unmappable[0]
        raise FhirError(422, f"Bundle.entry[{entry.index}]: {reason}; nothing was written")
    permit, guard = _permit(user), _guard(container, user)
    for index, what in sorted(_kinds(source).items()):
        entry = source.entries[index]
        try:
            permit(what)
            if what != "register":
                subject = subject_of(entry) or ""
                if subject.startswith("Patient/"):
                    try:
                        patient_id = UUID(subject.removeprefix("Patient/"))
                    except ValueError:
                        continue
                    guard(patient_id)
        except Refused as exc:
            raise FhirError(exc.status, f"Bundle.entry[{index}]: {exc.reason}") from exc


def _response(line: Line) -> dict[str, Any]:
    status = HTTPStatus(line.http_status)
    answer: dict[str, Any] = {"status": f"{status.value} {status.phrase}"}
    if line.status is Status.NOT_MAPPABLE:
        code = "forbidden" if line.http_status == 403 else "not-supported"
        answer["outcome"] = operation_outcome(issue(line.reason or "not mappable", code=code))
    elif line.backbone_id is not None and line.resource_type in LOCATED:
        answer["location"] = f"{line.resource_type}/{line.backbone_id}"
    if line.notes:
        notes = [issue(n, code="informational", severity="information") for n in line.notes]
        answer.setdefault("outcome", operation_outcome(*notes))
    return {"response": answer}


async def transaction(
    request: Request, container: ContainerDep, user: CurrentUser
) -> FhirJSONResponse:
    """Import a transaction or batch Bundle; one response entry per entry."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FhirError(400, "the body is not JSON", code="invalid") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError(400, "POST /fhir/R4 takes a Bundle", code="invalid")
    if body.get("type") not in ("transaction", "batch"):
        raise FhirError(400, "the Bundle's type must be transaction or batch", code="invalid")
    try:
        source = read_bundle(body)
    except NotFhir as exc:
        raise FhirError(400, str(exc), code="invalid") from exc
    answer = await run_in_threadpool(_import, container, user, source)
    return FhirJSONResponse(answer)


def _import(container: Container, user: Principal, source: Source) -> dict[str, Any]:
    if source.bundle_type == "transaction":
        _check_transaction(container, user, source)
    ctx = CommandContext(
        actor=user.actor,
        reason=f"FHIR {source.bundle_type}",
        guard=_guard(container, user),
    )
    importer = Importer(
        container.store,
        ctx,
        source,
        attending=user.user_id if user.role == "physician" else None,
        permit=_permit(user),
    )
    report = importer.run()
    return {
        "resourceType": "Bundle",
        "type": f"{source.bundle_type}-response",
        "entry": [_response(line) for line in report.sorted_lines()],
    }


def install(base: APIRouter) -> None:
    """Add ``POST`` at the base router's own path (``/fhir/R4``)."""
    base.add_api_route(
        "", transaction, methods=["POST"], response_class=FhirJSONResponse, tags=["fhir"]
    )
