"""The lab-routing consumer: results with a routed flag become inbox items of the orderer.

Orders and results travel on different topics; the inbox joins them by order, so a result
that arrives before its order is routed as soon as the order is known.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import orders as o
from events.domain.topics import ORDERS, PATIENTS, RESULTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection

DDL = """
CREATE TABLE IF NOT EXISTS routing_orders (
    order_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    ordering_physician uuid NOT NULL,
    test_name text NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_orders_physician ON routing_orders (ordering_physician);
CREATE TABLE IF NOT EXISTS inbox_items (
    item_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    value double precision NOT NULL,
    unit text NOT NULL,
    flag text NOT NULL,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by uuid
);
CREATE INDEX IF NOT EXISTS inbox_items_open ON inbox_items (order_id)
    WHERE acknowledged_at IS NULL;
"""

CRITICAL = ("HH", "LL")


def routed_flags(route_abnormal: bool) -> frozenset[str]:
    """The flags routed to the ordering physician: critical ones, and H / L if configured."""
    return frozenset(CRITICAL + (("H", "L") if route_abnormal else ()))


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
            if r.flag not in routed_flags:
                continue
            cur.execute(
                "INSERT INTO inbox_items (item_id, order_id, patient_id, code, name, value, unit, "
                "flag, observed_at, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (item_id) DO NOTHING",
                (
                    r.result_id,
                    env.aggregate_id,
                    env.patient_id,
                    r.code,
                    r.name,
                    r.value,
                    r.unit,
                    r.flag,
                    env.occurred_at,
                    env.recorded_at,
                ),
            )

    def amended(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultAmended) -> None:
        del env
        cur.execute(
            "UPDATE inbox_items SET value = %s, unit = %s, flag = %s WHERE item_id = %s",
            (payload.value, payload.unit, payload.flag, payload.result_id),
        )

    def acknowledged(
        cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultAcknowledged
    ) -> None:
        cur.execute(
            "UPDATE inbox_items SET acknowledged_at = %s, acknowledged_by = %s "
            "WHERE item_id = %s AND acknowledged_at IS NULL",
            (env.recorded_at, env.actor.user_id, payload.result_id),
        )

    def purge(cur: Cursor[Any], patient_id: UUID) -> None:
        cur.execute("DELETE FROM inbox_items WHERE patient_id = %s", (patient_id,))
        cur.execute("DELETE FROM routing_orders WHERE patient_id = %s", (patient_id,))

    return Projection(
        name="lab_routing",
        topics=(PATIENTS.name, ORDERS.name, RESULTS.name),
        tables=("routing_orders", "inbox_items"),
        ddl=DDL,
        handlers={
            "order.placed": placed,
            "result.received": received,
            "result.amended": amended,
            "result.acknowledged": acknowledged,
        },
        purge=purge,
    )
