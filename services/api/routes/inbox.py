"""``/v1/inbox``: critical (and configured abnormal) results routed to the ordering physician."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel

from events.commands.access import RecordChartView
from events.commands.orders import AcknowledgeResult
from events.domain.errors import NotFound
from projections.chart import wait_for_position
from services.api.deps import ContainerDep, IdempotencyKey, command_context, require
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
    container: ContainerDep,
    user: Physician,
    min_position: Annotated[int | None, Query(ge=0)] = None,
) -> list[InboxItem]:
    """Your unacknowledged results, critical first, oldest first; each patient read is audited."""
    with container.reads.connection() as conn:
        if min_position:
            wait_for_position(
                conn,
                container.store.event_log,
                min_position,
                container.settings.read_wait_timeout_s,
                (lab_routing(routed_flags(container.settings.route_abnormal_results)),),
            )
        rows = conn.execute(
            "SELECT i.item_id, i.order_id, i.patient_id, o.test_name, i.code, i.name, i.value, "
            "i.unit, i.flag, i.observed_at FROM inbox_items i "
            "JOIN routing_orders o ON o.order_id = i.order_id "
            "WHERE o.ordering_physician = %s AND i.acknowledged_at IS NULL "
            "ORDER BY (i.flag IN ('HH', 'LL')) DESC, i.observed_at, i.item_id LIMIT 200",
            (user.user_id,),
        ).fetchall()
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
