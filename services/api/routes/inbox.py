"""``/v1/inbox``: critical (and configured abnormal) results routed to the ordering physician."""

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
from services.api.schemas.common import Written
from services.auth.service import Principal
from services.departments.lab_routing import lab_routing, routed_flags

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])

Physician = Annotated[Principal, Depends(require("physician"))]


class InboxItem(BaseModel):
    """A result waiting for the ordering physician's acknowledgement."""

    item_id: UUID
    order_id: UUID
    patient_id: UUID
    test_name: str
    code: str
    name: str
    value: float
    unit: str
    flag: str
    observed_at: datetime


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
) -> list[InboxItem]:
    """Your unacknowledged results, critical first, oldest first; each patient read is audited.
    A full page names the next in ``Link`` (rel="next") and ``X-Next-Cursor``."""
    after = cursors.decode(cursor, bool, datetime, UUID) if cursor else None
    routing = lab_routing(routed_flags(container.settings.route_abnormal_results))
    await_position(container, guards, min_position, (routing,))
    with container.reads.connection() as conn:
        rows = conn.execute(
            "SELECT i.item_id, i.order_id, i.patient_id, o.test_name, i.code, i.name, i.value, "
            "i.unit, i.flag, i.observed_at FROM inbox_items i "
            "JOIN routing_orders o ON o.order_id = i.order_id "
            "WHERE o.ordering_physician = %(u)s AND i.acknowledged_at IS NULL "
            "AND (%(a)s::boolean IS NULL OR (i.flag NOT IN ('HH', 'LL'), i.observed_at, i.item_id)"
            " > (%(a)s, %(o)s, %(i)s)) "
            "ORDER BY i.flag NOT IN ('HH', 'LL'), i.observed_at, i.item_id LIMIT %(n)s",
            {
                "u": user.user_id,
                "a": after[0] if after else None,
                "o": after[1] if after else None,
                "i": after[2] if after else None,
                "n": limit,
            },
        ).fetchall()
    cursors.link_next(
        request, response, rows, limit, lambda r: (r[8] not in ("HH", "LL"), r[9], r[0])
    )
    items = [
        InboxItem.model_validate(dict(zip(InboxItem.model_fields, r, strict=True))) for r in rows
    ]
    for patient_id in dict.fromkeys(item.patient_id for item in items):
        container.store.record_chart_view(
            command_context(user), RecordChartView(patient_id, "results", "result review", False)
        )
    return items


@router.post("/{item_id}/ack", status_code=status.HTTP_201_CREATED, response_model=Written)
def acknowledge(
    item_id: UUID, container: ContainerDep, user: Physician, key: IdempotencyKey = None
) -> Written:
    """Acknowledge a routed result (records ``result.acknowledged``)."""
    with container.reads.connection() as conn:
        row = conn.execute(
            "SELECT i.order_id, o.ordering_physician FROM inbox_items i "
            "JOIN routing_orders o ON o.order_id = i.order_id WHERE i.item_id = %s",
            (item_id,),
        ).fetchone()
    if row is None:
        raise NotFound("inbox item", item_id)
    order_id, physician = row
    if physician != user.user_id:
        raise Forbidden("only the ordering physician acknowledges this result")
    acknowledged = AcknowledgeResult(order_id, item_id)
    return Written.of(
        container.store.acknowledge_result(command_context(user, key=key), acknowledged)
    )
