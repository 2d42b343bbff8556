"""The lab-routing consumer: results with a routed flag become inbox items of the orderer.

Orders and results travel on different topics; the inbox joins them by order, so a result
that arrives before its order is routed as soon as the order is known. An amendment that
makes (or leaves) a result routable notifies again, even after an acknowledgement; a
``result.escalated`` adds the care-team members it names as recipients of the item
(``services/departments/escalation.py`` decides when to escalate).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import orders as o
from events.domain.topics import ORDERS, PATIENTS, RESULTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection
from services.departments.wards import purge_wards, ward_ddl, ward_handlers

WARDS = "routing_wards"
DDL = """
CREATE TABLE IF NOT EXISTS routing_orders (
    order_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    ordering_physician uuid NOT NULL,
    test_name text NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_orders_physician ON routing_orders (ordering_physician);
CREATE TABLE IF NOT EXISTS routing_results (
    result_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    observed_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_items (
    item_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    value double precision,
    unit text,
    flag text,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by uuid
);
ALTER TABLE inbox_items ALTER COLUMN value DROP NOT NULL;
ALTER TABLE inbox_items ALTER COLUMN unit DROP NOT NULL;
ALTER TABLE inbox_items ALTER COLUMN flag DROP NOT NULL;
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS comparator text;
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS value_text text;
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'final';
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS notified_at timestamptz;
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS renotified boolean NOT NULL DEFAULT false;
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS escalated_at timestamptz;
UPDATE inbox_items SET notified_at = recorded_at WHERE notified_at IS NULL;
CREATE INDEX IF NOT EXISTS inbox_items_open ON inbox_items (order_id)
    WHERE acknowledged_at IS NULL;
CREATE TABLE IF NOT EXISTS inbox_recipients (
    item_id uuid NOT NULL,
    user_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    role text NOT NULL,
    escalated_at timestamptz NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX IF NOT EXISTS inbox_recipients_user ON inbox_recipients (user_id);
"""

CRITICAL = ("HH", "LL")

_INSERT_ITEM = (
    "INSERT INTO inbox_items (item_id, order_id, patient_id, code, name, value, comparator, "
    "value_text, unit, flag, status, observed_at, recorded_at, notified_at) "
    "VALUES (%(item)s, %(order)s, %(patient)s, %(code)s, %(name)s, %(value)s, %(comparator)s, "
    "%(text)s, %(unit)s, %(flag)s, %(status)s, %(observed)s, %(recorded)s, %(recorded)s) "
    "ON CONFLICT (item_id) DO NOTHING"
)
# An amendment to a routed flag notifies again: open, not escalated, marked re-notified.
_UPDATE_ITEM = (
    "UPDATE inbox_items SET value = %(value)s, comparator = %(comparator)s, "
    "value_text = %(text)s, unit = %(unit)s, flag = %(flag)s, status = %(status)s, "
    "acknowledged_at = CASE WHEN %(routed)s THEN NULL ELSE acknowledged_at END, "
    "acknowledged_by = CASE WHEN %(routed)s THEN NULL ELSE acknowledged_by END, "
    "escalated_at = CASE WHEN %(routed)s THEN NULL ELSE escalated_at END, "
    "notified_at = CASE WHEN %(routed)s THEN %(recorded)s ELSE notified_at END, "
    "renotified = renotified OR %(routed)s WHERE item_id = %(item)s"
)


def routed_flags(route_abnormal: bool) -> frozenset[str]:
    """The flags routed to the ordering physician: critical ones, and H / L if configured."""
    return frozenset(CRITICAL + (("H", "L") if route_abnormal else ()))


def _values(payload: o.ReportedValue) -> dict[str, Any]:
    return {
        "value": payload.value,
        "comparator": payload.comparator,
        "text": payload.value_text,
        "unit": payload.unit,
        "flag": payload.flag,
        "status": payload.status,
    }


def lab_routing(routed_flags: frozenset[str]) -> Projection:
    """The routing projection for a set of flags (always ``HH``/``LL``, optionally ``H``/``L``)."""

    def placed(cur: Cursor[Any], env: PublishedEnvelope, payload: o.OrderPlaced) -> None:
        cur.execute(
            "INSERT INTO routing_orders (order_id, patient_id, ordering_physician, test_name) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (order_id) DO NOTHING",
            (env.aggregate_id, env.patient_id, payload.ordering_physician, payload.test_name),
        )

    def received(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultReceived) -> None:
        for r in payload.results:
            cur.execute(
                "INSERT INTO routing_results (result_id, order_id, patient_id, code, name, "
                "observed_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (result_id) DO NOTHING",
                (r.result_id, env.aggregate_id, env.patient_id, r.code, r.name, env.occurred_at),
            )
            if r.flag not in routed_flags:
                continue
            cur.execute(
                _INSERT_ITEM,
                {
                    "item": r.result_id,
                    "order": env.aggregate_id,
                    "patient": env.patient_id,
                    "code": r.code,
                    "name": r.name,
                    "observed": env.occurred_at,
                    "recorded": env.recorded_at,
                    **_values(r),
                },
            )

    def amended(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultAmended) -> None:
        routed = payload.flag in routed_flags
        values = {"item": payload.result_id, "recorded": env.recorded_at, **_values(payload)}
        if routed:
            # A result that becomes routable by its amendment enters the inbox now.
            cur.execute(
                "INSERT INTO inbox_items (item_id, order_id, patient_id, code, name, value, "
                "comparator, value_text, unit, flag, status, observed_at, recorded_at, "
                "notified_at) SELECT r.result_id, r.order_id, r.patient_id, r.code, r.name, "
                "%(value)s, %(comparator)s, %(text)s, %(unit)s, %(flag)s, %(status)s, "
                "r.observed_at, %(recorded)s, %(recorded)s FROM routing_results r "
                "WHERE r.result_id = %(item)s ON CONFLICT (item_id) DO NOTHING",
                values,
            )
            cur.execute("DELETE FROM inbox_recipients WHERE item_id = %s", (payload.result_id,))
        cur.execute(_UPDATE_ITEM, {**values, "routed": routed})

    def acknowledged(
        cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultAcknowledged
    ) -> None:
        cur.execute(
            "UPDATE inbox_items SET acknowledged_at = %s, acknowledged_by = %s "
            "WHERE item_id = %s AND acknowledged_at IS NULL",
            (env.recorded_at, env.actor.user_id, payload.result_id),
        )

    def escalated(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultEscalated) -> None:
        cur.execute(
            "UPDATE inbox_items SET escalated_at = %s WHERE item_id = %s",
            (env.recorded_at, payload.result_id),
        )
        for member in payload.notified:
            cur.execute(
                "INSERT INTO inbox_recipients (item_id, user_id, patient_id, role, escalated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (item_id, user_id) DO UPDATE "
                "SET escalated_at = EXCLUDED.escalated_at",
                (payload.result_id, member.user_id, env.patient_id, member.role, env.recorded_at),
            )

    def purge(cur: Cursor[Any], patient_id: UUID) -> None:
        for table in ("inbox_recipients", "inbox_items", "routing_results", "routing_orders"):
            cur.execute(f"DELETE FROM {table} WHERE patient_id = %s", (patient_id,))  # noqa: S608
        purge_wards(cur, WARDS, patient_id)

    return Projection(
        name="lab_routing",
        topics=(PATIENTS.name, ORDERS.name, RESULTS.name),
        tables=("routing_orders", "routing_results", "inbox_items", "inbox_recipients", WARDS),
        ddl=DDL + ";\n" + ward_ddl(WARDS),
        handlers={
            **ward_handlers(WARDS),
            "order.placed": placed,
            "result.received": received,
            "result.amended": amended,
            "result.acknowledged": acknowledged,
            "result.escalated": escalated,
        },
        purge=purge,
    )
