"""``/v1/pharmacy/queue``: the pharmacist's verification queue and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from events.commands.access import RecordChartView
from events.commands.base import CommandContext
from events.commands.medications import PharmacyDecision
from events.domain.errors import NotFound
from services.api import cursors
from services.api.container import Container
from services.api.deps import ContainerDep, GuardsDep, IdempotencyKey, await_position, require
from services.api.examples import QUEUE, example
from services.api.schemas.common import QueryText, Written
from services.auth.service import Principal
from services.departments.pharmacy import PROJECTION as PHARMACY

router = APIRouter(prefix="/v1/pharmacy", tags=["pharmacy"])

Pharmacist = Annotated[Principal, Depends(require("pharmacist"))]


class QueueItem(BaseModel):
    """A prescription or change awaiting verification, with the pharmacy's alerts."""

    item_id: UUID
    medication_id: UUID
    patient_id: UUID
    kind: str
    drug_code: str
    drug_name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str
    prescriber: UUID
    alerts: list[str]
    created_at: datetime
    prescriber_override: str | None = Field(
        default=None, description="The prescriber's reason for going past an alert, if any."
    )


class Decision(BaseModel):
    """A rejection needs a reason; a verification may carry a note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "dose too high for renal function"}]},
    )

    reason: str | None = Field(default=None, max_length=1000)


class Rejection(Decision):
    reason: str = Field(min_length=3, max_length=1000)


@router.get("/queue", response_model=list[QueueItem], responses=example(QUEUE))
def queue(
    request: Request,
    container: ContainerDep,
    guards: GuardsDep,
    user: Pharmacist,
    response: Response,
    min_position: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
    ward: Annotated[QueryText | None, Query(max_length=50, description="Only this ward")] = None,
) -> list[QueueItem]:
    """Pending items, those with alerts first, then oldest first, optionally of the patients
    now on one ward; each patient read is audited.
    A full page names the next in ``Link`` (rel="next") and ``X-Next-Cursor``."""
    after = cursors.decode(cursor, bool, datetime, UUID) if cursor else None
    await_position(container, guards, min_position, (PHARMACY,))
    with container.replica_reads.connection() as conn:
        rows = conn.execute(
            "SELECT item_id, medication_id, patient_id, kind, drug_code, drug_name, dose, "
            "dose_unit, route, frequency, prescriber, alerts, created_at, prescriber_override "
            "FROM pharmacy_items "
            "WHERE status = 'pending' AND (%(w)s::text IS NULL OR patient_id IN "
            "(SELECT patient_id FROM pharmacy_wards WHERE ward = %(w)s)) "
            "AND (%(a)s::boolean IS NULL "
            "OR (jsonb_array_length(alerts) = 0, created_at, item_id) > (%(a)s, %(c)s, %(i)s)) "
            "ORDER BY jsonb_array_length(alerts) = 0, created_at, item_id LIMIT %(n)s",
            {
                "a": after[0] if after else None,
                "c": after[1] if after else None,
                "i": after[2] if after else None,
                "n": limit,
                "w": ward,
            },
        ).fetchall()
    cursors.link_next(request, response, rows, limit, lambda r: (len(r[11]) == 0, r[12], r[0]))
    items = [
        QueueItem.model_validate(dict(zip(QueueItem.model_fields, r, strict=True))) for r in rows
    ]
    for patient_id in dict.fromkeys(item.patient_id for item in items):
        container.store.record_chart_view(
            CommandContext(actor=user.actor),
            RecordChartView(patient_id, "medications", "pharmacy verification", False),
        )
    response.headers["X-Projection-Position"] = str(min_position or 0)
    return items


def _decide(
    container: Container,
    user: Principal,
    item_id: UUID,
    verified: bool,
    reason: str | None,
    key: str | None,
) -> Written:
    with container.reads.connection() as conn:
        row = conn.execute(
            "SELECT medication_id, order_version FROM pharmacy_items WHERE item_id = %s", (item_id,)
        ).fetchone()
    if row is None:
        raise NotFound("pharmacy queue item", item_id)
    medication_id, order_version = row
    ctx = CommandContext(actor=user.actor, reason=reason, causation_id=item_id, idempotency_key=key)
    decision = PharmacyDecision(medication_id, item_id, order_version, verified)
    return Written.of(container.store.pharmacy_decision(ctx, decision))


@router.post("/queue/{item_id}/verify", status_code=status.HTTP_201_CREATED, response_model=Written)
def verify(
    item_id: UUID,
    container: ContainerDep,
    user: Pharmacist,
    body: Decision | None = None,
    key: IdempotencyKey = None,
) -> Written:
    """Verify; 409 if the prescriber changed the order since this item was queued."""
    return _decide(container, user, item_id, True, body.reason if body else None, key)


@router.post("/queue/{item_id}/reject", status_code=status.HTTP_201_CREATED, response_model=Written)
def reject(
    item_id: UUID,
    body: Rejection,
    container: ContainerDep,
    user: Pharmacist,
    key: IdempotencyKey = None,
) -> Written:
    """Reject, with a reason; 409 if the prescriber changed the order meanwhile."""
    return _decide(container, user, item_id, False, body.reason, key)
