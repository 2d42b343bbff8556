"""``/v1/audit``: who read what, and the alerts compliance watches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel

from events.commands.access import RecordAuditRead
from projections.registry import named
from services.api import cursors
from services.api.container import Container
from services.api.deps import ContainerDep, command_context, rate_limit, require
from services.api.examples import ACCESS, ALERTS, example
from services.auth.service import Principal
from services.local_stack.processes import wait_until

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Compliance = Annotated[Principal, Depends(require("compliance"))]
ACCESS_MAX_PAGE = 1000


class AccessRecord(BaseModel):
    """One read of patient data or one break-glass."""

    event_id: UUID
    patient_id: UUID
    user_id: UUID
    role: str
    event_type: str
    section: str | None
    purpose: str | None
    break_glass: bool
    reason: str | None
    recorded_at: datetime


class Alert(BaseModel):
    """Something compliance should look at."""

    kind: str
    user_id: UUID | None = None
    username: str | None = None
    patient_id: UUID | None = None
    at: datetime
    detail: str


def audited(container: Container, user: Principal, read: RecordAuditRead) -> None:
    """Reading the audit trail is itself recorded (who looked at whom, how much)."""
    container.store.record_audit_read(command_context(user), read)


def catch_up(container: Container) -> None:
    """Wait (bounded) until the access log holds every access recorded before this request:
    the relay has published up to the store's head and the projection has consumed it all."""
    head = container.store.event_log.head()
    projection = (named("access_audit"),)

    def done() -> bool:
        state = container.status.relay_state()
        if state.position < head:
            return False
        return container.status.consumer_lag(projection)["access_audit"] == 0

    wait_until(done, container.settings.read_wait_timeout_s, 0.05)


@router.get(
    "/access",
    response_model=list[AccessRecord],
    responses=example(ACCESS),
    dependencies=[Depends(rate_limit("exports"))],
)
def access_log(
    request: Request,
    response: Response,
    container: ContainerDep,
    user: Compliance,
    patient_id: UUID | None = None,
    user_id: UUID | None = None,
    since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=ACCESS_MAX_PAGE)] = 200,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
) -> list[AccessRecord]:
    """Who read which patient's data, when and why (newest first); a full page names the
    next in ``Link`` (rel="next") and ``X-Next-Cursor``."""
    at, position = cursors.decode(cursor, datetime, int) if cursor else (None, None)
    catch_up(container)
    with container.reads.connection() as conn:
        rows = conn.execute(
            "SELECT event_id, patient_id, user_id, role, event_type, section, purpose, "
            "break_glass, reason, recorded_at, position FROM access_audit "
            "WHERE (%(p)s::uuid IS NULL OR patient_id = %(p)s) "
            "AND (%(u)s::uuid IS NULL OR user_id = %(u)s) "
            "AND (%(s)s::timestamptz IS NULL OR recorded_at >= %(s)s) "
            "AND (%(ca)s::timestamptz IS NULL OR (recorded_at, position) < (%(ca)s, %(cp)s)) "
            "ORDER BY recorded_at DESC, position DESC LIMIT %(n)s",
            {"p": patient_id, "u": user_id, "s": since, "ca": at, "cp": position, "n": limit},
        ).fetchall()
    audited(container, user, RecordAuditRead("access_log", patient_id, user_id, len(rows)))
    cursors.link_next(request, response, rows, limit, lambda r: (r[9], r[10]))
    fields = AccessRecord.model_fields
    return [AccessRecord.model_validate(dict(zip(fields, row[:10], strict=True))) for row in rows]


# Every alert of the period, newest first, a page at a time: nothing pushes an alert out of
# view (a flood of bulk reads cannot hide a break-glass). The tie-breaker makes the order
# total, so a cursor (time, tie) starts the next page exactly after the last row.
ALERTS_SQL = """
SELECT kind, user_id, username, patient_id, at, detail, tie FROM (
SELECT a.*, md5(concat_ws('|', kind, user_id, username, patient_id, detail)) AS tie FROM (
SELECT 'break_glass', user_id, NULL::text, patient_id, recorded_at,
       'break-glass: ' || COALESCE(reason, '')
FROM access_audit WHERE event_type = 'access.break_glass' AND recorded_at >= %(since)s
UNION ALL
SELECT 'bulk_reads', user_id, NULL, NULL, hour,
       count || ' distinct patients read within one hour'
FROM (SELECT user_id, date_trunc('hour', recorded_at) AS hour,
             count(DISTINCT patient_id) AS count
      FROM access_audit WHERE event_type = 'chart.viewed' AND recorded_at >= %(since)s
      GROUP BY 1, 2) bulk
WHERE count > %(bulk)s
UNION ALL
SELECT 'after_hours', user_id, NULL, patient_id, recorded_at,
       'read outside working hours'
FROM access_audit
WHERE event_type = 'chart.viewed' AND recorded_at >= %(since)s
  AND (extract(hour FROM recorded_at AT TIME ZONE %(tz)s) < %(start)s
       OR extract(hour FROM recorded_at AT TIME ZONE %(tz)s) >= %(end)s)
UNION ALL
SELECT 'failed_logins', NULL, username, NULL, max(at), count(*) || ' failed logins'
FROM auth_failures WHERE at >= %(since)s GROUP BY username HAVING count(*) >= 3
UNION ALL
SELECT 'locked_out', NULL, username, NULL, until, 'account locked until ' || until
FROM auth_lockouts WHERE until >= %(since)s
UNION ALL
SELECT 'failed_logins_from_address', NULL, NULL, NULL, max(at),
       count(*) || ' failed logins for ' || count(DISTINCT username) || ' usernames from '
       || client_address
FROM auth_failures WHERE at >= %(since)s AND client_address IS NOT NULL
GROUP BY client_address HAVING count(DISTINCT username) >= 3
UNION ALL
SELECT 'self_grant', user_id, NULL, patient_id, recorded_at,
       'tried to add themself to a care team'
FROM access_denials WHERE kind = 'self_grant' AND recorded_at >= %(since)s
UNION ALL
SELECT 'unacknowledged_critical', o.ordering_physician, NULL, i.patient_id, i.recorded_at,
       'critical ' || i.name || ' not acknowledged'
FROM inbox_items i JOIN routing_orders o ON o.order_id = i.order_id
WHERE i.acknowledged_at IS NULL AND i.flag IN ('HH', 'LL') AND i.recorded_at < %(ack_due)s
) a (kind, user_id, username, patient_id, at, detail)
) alerts
WHERE %(ca)s::timestamptz IS NULL OR (at, tie) < (%(ca)s, %(ct)s)
ORDER BY at DESC, tie DESC
LIMIT %(n)s
"""


@router.get(
    "/alerts",
    response_model=list[Alert],
    responses=example(ALERTS),
    dependencies=[Depends(rate_limit("exports"))],
)
def alerts(
    request: Request,
    response: Response,
    container: ContainerDep,
    user: Compliance,
    hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
    limit: Annotated[int, Query(ge=1, le=ACCESS_MAX_PAGE)] = 200,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
) -> list[Alert]:
    """Break-glass uses, self-grants, bulk reads, after-hours reads, repeated failed logins
    (per user and per address) and critical results not acknowledged in time, newest first;
    never capped: a full page names the next in ``Link`` and ``X-Next-Cursor``."""
    at, tie = cursors.decode(cursor, datetime, str) if cursor else (None, None)
    catch_up(container)
    s = container.settings
    params: dict[str, Any] = {
        "since": container.store.clock() - timedelta(hours=hours),
        "bulk": s.bulk_read_patients_per_hour,
        "tz": s.working_hours_tz,
        "start": s.working_hours_start,
        "end": s.working_hours_end,
        "ack_due": container.store.clock() - timedelta(minutes=s.critical_ack_minutes),
        "ca": at,
        "ct": tie,
        "n": limit,
    }
    with container.reads.connection() as conn:
        rows = conn.execute(ALERTS_SQL, params).fetchall()
    audited(container, user, RecordAuditRead("alerts", None, None, len(rows)))
    cursors.link_next(request, response, rows, limit, lambda r: (r[4], r[6]))
    return [
        Alert(kind=r[0], user_id=r[1], username=r[2], patient_id=r[3], at=r[4], detail=r[5])
        for r in rows
    ]


class DeniedRequest(BaseModel):
    """One refused request: who (when known), which route, why, from where."""

    event_id: UUID
    user_id: UUID
    role: str
    method: str
    route: str
    status: int
    kind: str
    detail: str
    patient_id: UUID | None
    client: str | None
    recorded_at: datetime


@router.get(
    "/denials",
    response_model=list[DeniedRequest],
    dependencies=[Depends(rate_limit("exports"))],
)
def denials(
    request: Request,
    response: Response,
    container: ContainerDep,
    user: Compliance,
    patient_id: UUID | None = None,
    since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=ACCESS_MAX_PAGE)] = 200,
    cursor: Annotated[str | None, Query(max_length=200, description="X-Next-Cursor")] = None,
) -> list[DeniedRequest]:
    """Refused requests (401 and 403), newest first: who tried what, when, from where; a
    full page names the next in ``Link`` and ``X-Next-Cursor``."""
    at, position = cursors.decode(cursor, datetime, int) if cursor else (None, None)
    catch_up(container)
    with container.reads.connection() as conn:
        rows = conn.execute(
            "SELECT event_id, user_id, role, method, route, status, kind, detail, patient_id, "
            "client, recorded_at, position FROM access_denials "
            "WHERE (%(p)s::uuid IS NULL OR patient_id = %(p)s) "
            "AND (%(s)s::timestamptz IS NULL OR recorded_at >= %(s)s) "
            "AND (%(ca)s::timestamptz IS NULL OR (recorded_at, position) < (%(ca)s, %(cp)s)) "
            "ORDER BY recorded_at DESC, position DESC LIMIT %(n)s",
            {"p": patient_id, "s": since, "ca": at, "cp": position, "n": limit},
        ).fetchall()
    audited(container, user, RecordAuditRead("denials", patient_id, None, len(rows)))
    cursors.link_next(request, response, rows, limit, lambda r: (r[10], r[11]))
    fields = DeniedRequest.model_fields
    return [DeniedRequest.model_validate(dict(zip(fields, row[:11], strict=True))) for row in rows]
