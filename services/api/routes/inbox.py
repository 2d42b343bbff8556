"""``/v1/inbox``: critical (and configured abnormal) results routed to the ordering physician,
and critical results escalated to the care team when nobody acknowledged them in time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel

from events.commands.access import RecordChartView
from events.commands.orders import AcknowledgeResult
from events.domain.errors import NotFound
from services.api import cursors
from services.api.deps import (
    ContainerDep,
    GuardsDep,
    IdempotencyKey,
    await_position,
    command_context,
    require,
)
from services.api.examples import INBOX, example
from services.api.problems import Forbidden
from services.api.schemas.common import QueryText, Written
from services.auth.service import Principal
from services.departments.lab_routing import lab_routing, routed_flags

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])

Physician = Annotated[Principal, Depends(require("physician"))]
Clinician = Annotated[Principal, Depends(require("nurse", "physician", "pharmacist"))]


class InboxItem(BaseModel):
    """A result waiting for the ordering physician's acknowledgement.

    ``value`` is null for a text result (``value_text``); a comparator result keeps both
    (``<``, 0.01, ``<0.01``). ``renotified``: an amendment routed it again; ``escalated``:
    nobody acknowledged it in time and the care team was notified (``escalated_to_you``)."""

    item_id: UUID
    order_id: UUID
    patient_id: UUID
    test_name: str
    code: str
    name: str
    value: float | None
    comparator: str | None = None
    value_text: str | None = None
    unit: str | None
    flag: str | None
    status: str = "final"
    observed_at: datetime
    renotified: bool = False
    escalated: bool = False
    escalated_to_you: bool = False


# Critical first (a null flag, text corrected from a critical value, sorts as routine).
ITEMS_SQL = (
    "SELECT i.item_id, i.order_id, i.patient_id, o.test_name, i.code, i.name, i.value, "
    "i.comparator, i.value_text, i.unit, i.flag, i.status, i.observed_at, i.renotified, "
    "i.escalated_at IS NOT NULL, r.user_id IS NOT NULL, COALESCE(i.flag NOT IN ('HH', 'LL'), true) "
    "FROM inbox_items i "
    "JOIN routing_orders o ON o.order_id = i.order_id "
    "LEFT JOIN inbox_recipients r ON r.item_id = i.item_id AND r.user_id = %(u)s "
    "WHERE (r.user_id IS NOT NULL "
    "OR (NOT %(escalated_only)s AND o.ordering_physician = %(u)s)) "
    "AND i.acknowledged_at IS NULL "
    "AND (%(w)s::text IS NULL OR i.patient_id IN "
    "(SELECT patient_id FROM routing_wards WHERE ward = %(w)s)) "
    "AND (%(a)s::boolean IS NULL OR "
    "(COALESCE(i.flag NOT IN ('HH', 'LL'), true), i.observed_at, i.item_id)"
    " > (%(a)s, %(o)s, %(i)s)) "
    "ORDER BY COALESCE(i.flag NOT IN ('HH', 'LL'), true), i.observed_at, i.item_id "
    "LIMIT %(n)s"
)


def _items(
    request: Request,
    response: Response,
    container: ContainerDep,
    guards: GuardsDep,
    user: Principal,
    page: tuple[int | None, int, str | None],
    escalated_only: bool,
    ward: str | None = None,
) -> list[InboxItem]:
    min_position, limit, cursor = page
    after = cursors.decode(cursor, bool, datetime, UUID) if cursor else None
    routing = lab_routing(routed_flags(container.settings.route_abnormal_results))
    await_position(container, guards, min_position, (routing,))
    with container.replica_reads.connection() as conn:
        rows = conn.execute(
            ITEMS_SQL,
            {
                "u": user.user_id,
                "escalated_only": escalated_only,
                "w": ward,
                "a": after[0] if after else None,
                "o": after[1] if after else None,
                "i": after[2] if after else None,
                "n": limit,
            },
        ).fetchall()
    cursors.link_next(request, response, rows, limit, lambda r: (r[16], r[12], r[0]))
    fields = list(InboxItem.model_fields)
    items = [InboxItem.model_validate(dict(zip(fields, r[:16], strict=True))) for r in rows]
    for patient_id in dict.fromkeys(item.patient_id for item in items):
        container.store.record_chart_view(
            command_context(user), RecordChartView(patient_id, "results", "result review", False)
        )
    return items


@router.get("", response_model=list[InboxItem], responses=example(INBOX))
def inbox(
    request: Request,
    response: Response,
    container: ContainerDep,
    guards: GuardsDep,
    user: Physician,
    min_position: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
    ward: Annotated[QueryText | None, Query(max_length=50, description="Only this ward")] = None,
) -> list[InboxItem]:
    """Your unacknowledged results (ordered by you, or escalated to you), critical first,
    oldest first, optionally of the patients now on one ward; each patient read is audited.
    A full page names the next in ``Link`` (rel="next") and ``X-Next-Cursor``."""
    page = (min_position, limit, cursor)
    return _items(request, response, container, guards, user, page, False, ward)


@router.get("/escalations", response_model=list[InboxItem], responses=example(INBOX))
def escalations(
    request: Request,
    response: Response,
    container: ContainerDep,
    guards: GuardsDep,
    user: Clinician,
    min_position: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
) -> list[InboxItem]:
    """Critical results escalated to you (a nurse, physician or pharmacist of the care team)
    because nobody acknowledged them in time; each patient read is audited."""
    page = (min_position, limit, cursor)
    return _items(request, response, container, guards, user, page, escalated_only=True)


@router.post("/{item_id}/ack", status_code=status.HTTP_201_CREATED, response_model=Written)
def acknowledge(
    item_id: UUID, container: ContainerDep, user: Physician, key: IdempotencyKey = None
) -> Written:
    """Acknowledge a routed result (records ``result.acknowledged``): the ordering
    physician, or a physician it was escalated to."""
    with container.reads.connection() as conn:
        row = conn.execute(
            "SELECT i.order_id, o.ordering_physician, EXISTS (SELECT 1 FROM inbox_recipients r "
            "WHERE r.item_id = i.item_id AND r.user_id = %s) FROM inbox_items i "
            "JOIN routing_orders o ON o.order_id = i.order_id WHERE i.item_id = %s",
            (user.user_id, item_id),
        ).fetchone()
    if row is None:
        raise NotFound("inbox item", item_id)
    order_id, physician, escalated_to_user = row
    if physician != user.user_id and not escalated_to_user:
        raise Forbidden("only the ordering physician (or one it was escalated to) acknowledges")
    acknowledged = AcknowledgeResult(order_id, item_id)
    return Written.of(
        container.store.acknowledge_result(command_context(user, key=key), acknowledged)
    )
