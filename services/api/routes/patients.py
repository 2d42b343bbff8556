"""``/v1/patients``: registration, search, the chart, break-glass and clinical writes.

Reads follow merges (``routes.merges``): a merged record's chart and history are its
survivor's, with both records' data, behind the survivor's care team."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import AwareDatetime

from events.commands.access import GrantBreakGlass, RecordChartView
from events.commands.medications import Prescribe
from events.commands.observations import RecordVitals
from events.commands.orders import PlaceOrder
from events.commands.patients import RegisterPatient
from events.domain.aggregates import patients as patient_aggregate
from events.domain.errors import NotFound, PatientErasedError
from events.domain.payloads.patients import MRN_PATTERN
from projections.chart import fetch_chart, survivors_of
from projections.engine.as_of import chart_as_of
from projections.registry import named
from projections.waits import projection_position, wait_applied
from services.api.container import Container
from services.api.deps import (
    CLINICIANS,
    ContainerDep,
    CurrentUser,
    GuardsDep,
    IdempotencyKey,
    await_position,
    command_context,
    patient_access,
    rate_limit,
    require,
    write_context,
)
from services.api.examples import CHART, HISTORY, SEARCH, example
from services.api.guards import ProjectionBehind
from services.api.problems import Forbidden
from services.api.routes import allergies, merges, observations
from services.api.schemas.common import QueryText, Written
from services.api.schemas.medications import MedicationCreate
from services.api.schemas.orders import OrderCreate
from services.api.schemas.patients import (
    BreakGlassCreate,
    BreakGlassWritten,
    PatientCreate,
    PatientPublic,
    VitalsCreate,
    VitalsWritten,
)
from services.auth.service import Principal

HISTORY_MAX_PAGE = 500

router = APIRouter(prefix="/v1/patients", tags=["patients"])
router.include_router(allergies.router)
router.include_router(observations.router)
router.include_router(merges.router)

Registrar = Annotated[Principal, Depends(require("front_desk", "nurse", "physician", "admin"))]
Searcher = Annotated[
    Principal, Depends(require("front_desk", "nurse", "physician", "pharmacist", "billing"))
]
Clinician = Annotated[Principal, Depends(require(*CLINICIANS))]
NurseOrPhysician = Annotated[Principal, Depends(require("nurse", "physician"))]
Physician = Annotated[Principal, Depends(require("physician"))]
Historian = Annotated[Principal, Depends(require("physician", "compliance"))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Written)
def register_patient(
    body: PatientCreate, container: ContainerDep, user: Registrar, key: IdempotencyKey = None
) -> Written:
    """Register a patient; a second registration of the same MRN answers 409 with its id."""
    registration = RegisterPatient(
        mrn=body.mrn,
        family_name=body.family_name,
        given_names=tuple(body.given_names),
        birth_date=body.birth_date,
        sex=body.sex,
    )
    ctx = write_context(container, user, body, key, guarded=False)
    return Written.of(container.store.register_patient(ctx, registration))


@router.get(
    "",
    response_model=list[PatientPublic],
    responses=example(SEARCH),
    dependencies=[Depends(rate_limit("search"))],
)
def search_patients(
    container: ContainerDep,
    user: Searcher,
    mrn: Annotated[str | None, Query(pattern=MRN_PATTERN)] = None,
    name: Annotated[QueryText | None, Query(min_length=2, max_length=100)] = None,
) -> list[PatientPublic]:
    """Find patients by MRN or family name (demographics only); each hit is an audited read."""
    if (mrn is None) == (name is None):
        raise HTTPException(status_code=400, detail="give exactly one of mrn or name")
    with container.replica_reads.connection() as conn:
        if mrn is not None:
            rows = conn.execute(
                "SELECT patient_id, mrn, family_name, given_names, birth_date, sex FROM patients "
                "WHERE mrn = %s",
                (mrn,),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT patient_id, mrn, family_name, given_names, birth_date, sex FROM patients "
                "WHERE lower(family_name) = lower(%s) ORDER BY family_name LIMIT 20",
                (name,),
            ).fetchall()
    found = _with_survivors(container, [_public(r) for r in rows])
    for patient in found:
        container.store.record_chart_view(
            command_context(user),
            RecordChartView(patient.patient_id, "search", "registration", False),
        )
    return found


def _public(row: tuple[Any, ...], merged_into: UUID | None = None) -> PatientPublic:
    return PatientPublic(
        patient_id=row[0],
        mrn=row[1],
        family_name=row[2],
        given_names=row[3],
        birth_date=row[4],
        sex=row[5],
        merged_into=merged_into,
    )


def _with_survivors(container: Container, found: list[PatientPublic]) -> list[PatientPublic]:
    """Each merged hit says which record it is merged into, and that record follows it."""
    with container.replica_reads.connection() as conn:
        survivors = survivors_of(conn, [hit.patient_id for hit in found])
        missing = [s for s in survivors.values() if s not in {h.patient_id for h in found}]
        rows = (
            conn.execute(
                "SELECT patient_id, mrn, family_name, given_names, birth_date, sex FROM patients "
                "WHERE patient_id = ANY(%s)",
                (missing,),
            ).fetchall()
            if missing
            else []
        )
    followers = {row[0]: _public(row) for row in rows}
    answer: list[PatientPublic] = []
    for hit in found:
        survivor = survivors.get(hit.patient_id)
        answer.append(hit.model_copy(update={"merged_into": survivor}))
        if survivor in followers:
            answer.append(followers.pop(survivor))
    return answer


@router.get("/{patient_id}/chart", responses=example(CHART))
def read_chart(
    patient_id: UUID,
    container: ContainerDep,
    guards: GuardsDep,
    user: CurrentUser,
    response: Response,
    min_position: Annotated[int | None, Query(ge=0)] = None,
    purpose: Annotated[str, Query(max_length=100)] = "treatment",
    as_of: Annotated[AwareDatetime | None, Query(description="Replay the store up to T")] = None,
    time_basis: Annotated[Literal["recorded", "clinical"], Query()] = "recorded",
) -> dict[str, Any]:
    """The chart: demographics, allergies, active medications, pending orders, recent results
    with flags and trend, latest vitals. Care team or break-glass only; every read is audited.
    With ``as_of`` (physician, compliance): the chart as it was at T, replayed from the store.
    With ``min_position``: 503 with Retry-After if the projections have not applied it within
    the wait's bound; a patient registered but not projected yet is a 503 too, never a 404."""
    if as_of is not None:
        guards.rates.hit("exports", str(user.user_id))
        return _chart_as_of(container, user, patient_id, as_of, time_basis, purpose)
    if user.role not in CLINICIANS:
        raise Forbidden(f"the {user.role} role may not read charts")
    survivor, merged = container.store.merge_group(patient_id)
    break_glass = patient_access(container, user, survivor)
    await_position(container, guards, min_position)
    with container.replica_reads.connection() as conn:
        chart = fetch_chart(conn, patient_id)
    if chart is None:
        _require_known(container, patient_id)
        raise ProjectionBehind(
            "this patient's chart is not projected yet",
            projection_position(container.replica_reads),
            guards.waits.retry_after_s,
        )
    merges.require_agreement(container, guards, chart, survivor, merged)
    container.store.record_chart_view(
        command_context(user), RecordChartView(survivor, "chart", purpose, break_glass)
    )
    response.headers["X-Projection-Position"] = str(chart.position)
    return merges.chart_answer(chart, patient_id)


def _require_known(container: Container, patient_id: UUID) -> None:
    """404 for an unknown patient, 410 for an erased one (a merged one is known)."""
    state = container.store.load(patient_id, patient_aggregate.evolve)
    if state is None:
        raise NotFound("patient", patient_id)
    if state.erased:
        raise PatientErasedError(patient_id)


def _chart_as_of(
    container: Container,
    user: Principal,
    patient_id: UUID,
    at: datetime,
    basis: str,
    purpose: str,
) -> dict[str, Any]:
    if user.role not in ("physician", "compliance"):
        raise Forbidden(f"the {user.role} role may not replay charts")
    survivor = container.store.survivor_of(patient_id)
    break_glass = patient_access(container, user, survivor) if user.role == "physician" else False
    _require_known(container, patient_id)
    with container.reads.connection() as conn:
        chart = chart_as_of(
            conn, container.store, patient_id, at, "clinical" if basis == "clinical" else "recorded"
        )
    container.store.record_chart_view(
        command_context(user), RecordChartView(survivor, "chart_as_of", purpose, break_glass)
    )
    if chart is None:
        raise NotFound("chart of patient at that time", patient_id)
    return merges.chart_answer(chart, patient_id)


@router.get(
    "/{patient_id}/history",
    responses=example(HISTORY),
    dependencies=[Depends(rate_limit("exports"))],
)
def read_history(
    patient_id: UUID,
    container: ContainerDep,
    user: Historian,
    event_type: Annotated[str | None, Query(max_length=60)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    after: Annotated[
        int, Query(ge=0, description="The cursor: the next_cursor of the previous page")
    ] = 0,
    page_size: Annotated[int, Query(ge=1, le=HISTORY_MAX_PAGE)] = 100,
    purpose: Annotated[str, Query(max_length=100)] = "audit",
) -> dict[str, Any]:
    """Every event of the patient (changes and reads), oldest first: what, who, when
    (occurred and recorded), why, and for changes the fields before and after. One page
    per call: pass ``next_cursor`` back as ``after`` for the next (null at the end). Of a
    merged record or a survivor: the histories of every record of the merge, interleaved."""
    store = container.store
    survivor, merged = store.merge_group(patient_id)
    break_glass = patient_access(container, user, survivor) if user.role == "physician" else False
    ids = (survivor, *merged)
    events, next_cursor, scanned = merges.group_history(
        store.event_log, ids, after, page_size, event_type, since, until
    )
    if after == 0 and scanned == 0:
        raise NotFound("patient", patient_id)
    store.record_chart_view(
        command_context(user), RecordChartView(survivor, "history", purpose, break_glass)
    )
    return {
        "patient_id": str(patient_id),
        "survivor_id": str(survivor) if survivor != patient_id else None,
        "merged_ids": [str(i) for i in merged],
        "after": after,
        "page_size": page_size,
        "events": events,
        "next_cursor": next_cursor,
    }


@router.post(
    "/{patient_id}/break-glass",
    status_code=status.HTTP_201_CREATED,
    response_model=BreakGlassWritten,
    dependencies=[Depends(rate_limit("break_glass"))],
)
def break_glass(
    patient_id: UUID,
    body: BreakGlassCreate,
    container: ContainerDep,
    user: Clinician,
    key: IdempotencyKey = None,
) -> BreakGlassWritten:
    """Emergency access outside the care team: reason required, time-limited, alerts compliance."""
    minutes = container.settings.break_glass_minutes
    result = container.store.grant_break_glass(
        write_context(container, user, body, key, guarded=False),
        GrantBreakGlass(patient_id, timedelta(minutes=minutes)),
    )
    # Visible in the compliance alerts as soon as this answers (bounded: the grant is
    # durable either way, so a slow projection delays the answer, never refuses it).
    wait_applied(
        container.reads,
        container.store.event_log,
        result.position,
        container.settings.read_wait_timeout_s,
        (named("access_audit"),),
    )
    return BreakGlassWritten(id=result.id, position=result.position, expires_in_s=minutes * 60)


@router.post(
    "/{patient_id}/vitals", status_code=status.HTTP_201_CREATED, response_model=VitalsWritten
)
def record_vitals(
    patient_id: UUID,
    body: VitalsCreate,
    container: ContainerDep,
    user: NurseOrPhysician,
    key: IdempotencyKey = None,
) -> VitalsWritten:
    """Record vital signs: impossible values are refused, abnormal ones flagged."""
    vitals = RecordVitals(
        patient_id,
        heart_rate=body.heart_rate,
        systolic_bp=body.systolic_bp,
        diastolic_bp=body.diastolic_bp,
        temperature_c=body.temperature_c,
        respiratory_rate=body.respiratory_rate,
        spo2=body.spo2,
    )
    result = container.store.record_vitals(write_context(container, user, body, key), vitals)
    return VitalsWritten(id=result.id, position=result.position, flags=result.detail["flags"])


@router.post("/{patient_id}/orders", status_code=status.HTTP_201_CREATED, response_model=Written)
def place_order(
    patient_id: UUID,
    body: OrderCreate,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Place a lab order (LOINC code, priority)."""
    order = PlaceOrder(patient_id, body.test_code, body.test_name, body.priority)
    return Written.of(container.store.place_order(write_context(container, user, body, key), order))


@router.post(
    "/{patient_id}/medications", status_code=status.HTTP_201_CREATED, response_model=Written
)
def prescribe(
    patient_id: UUID,
    body: MedicationCreate,
    container: ContainerDep,
    user: Physician,
    key: IdempotencyKey = None,
) -> Written:
    """Prescribe; a dose above the maximum or an allergy conflict needs an override_reason."""
    prescription = Prescribe(
        patient_id,
        drug_code=body.drug_code,
        drug_name=body.drug_name,
        dose=body.dose,
        dose_unit=body.dose_unit,
        route=body.route,
        frequency=body.frequency,
        override_reason=body.override_reason,
    )
    return Written.of(
        container.store.prescribe(write_context(container, user, body, key), prescription)
    )
