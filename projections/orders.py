"""``orders``: the lab order worklist by status, per patient and overall.

Orders and results travel on different topics, so a ``result.received`` can arrive before
its ``order.placed``. Every handler is an upsert of its own columns and the status is
derived from which milestones are set, so any arrival order gives the same row.
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
CREATE TABLE IF NOT EXISTS lab_orders (
    order_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    test_code text,
    test_name text,
    priority text,
    ordering_physician uuid,
    placed_at timestamptz,
    collected_at timestamptz,
    resulted_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text,
    status text GENERATED ALWAYS AS (
        CASE WHEN cancelled_at IS NOT NULL THEN 'cancelled'
             WHEN resulted_at IS NOT NULL THEN 'resulted'
             WHEN collected_at IS NOT NULL THEN 'collected'
             ELSE 'placed' END
    ) STORED
);
CREATE INDEX IF NOT EXISTS lab_orders_worklist ON lab_orders (status, priority, placed_at);
CREATE INDEX IF NOT EXISTS lab_orders_patient ON lab_orders (patient_id, status);
-- The encounter the order was placed in, and the ordering system's number (null: none).
ALTER TABLE lab_orders ADD COLUMN IF NOT EXISTS encounter_id uuid;
ALTER TABLE lab_orders ADD COLUMN IF NOT EXISTS placer_number text;
"""


def placed(cur: Cursor[Any], env: PublishedEnvelope, payload: o.OrderPlaced) -> None:
    cur.execute(
        "INSERT INTO lab_orders (order_id, patient_id, test_code, test_name, priority, "
        "ordering_physician, placed_at, encounter_id, placer_number) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (order_id) DO UPDATE SET test_code = EXCLUDED.test_code, "
        "test_name = EXCLUDED.test_name, priority = EXCLUDED.priority, "
        "ordering_physician = EXCLUDED.ordering_physician, placed_at = EXCLUDED.placed_at, "
        "encounter_id = EXCLUDED.encounter_id, placer_number = EXCLUDED.placer_number",
        (
            env.aggregate_id,
            env.patient_id,
            payload.test_code,
            payload.test_name,
            payload.priority,
            payload.ordering_physician,
            env.occurred_at,
            payload.encounter_id,
            payload.placer_number,
        ),
    )


def _milestone(cur: Cursor[Any], env: PublishedEnvelope, column: str, at: object) -> None:
    # Re-collection keeps the latest collection time; results keep the first.
    keep = "GREATEST" if column == "collected_at" else "LEAST"
    cur.execute(
        f"INSERT INTO lab_orders (order_id, patient_id, {column}) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (order_id) DO UPDATE SET {column} = "
        f"{keep}(lab_orders.{column}, EXCLUDED.{column})",
        (env.aggregate_id, env.patient_id, at),
    )


def collected(cur: Cursor[Any], env: PublishedEnvelope, payload: o.SpecimenCollected) -> None:
    _milestone(cur, env, "collected_at", payload.collected_at)


def resulted(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultReceived) -> None:
    del payload
    _milestone(cur, env, "resulted_at", env.occurred_at)


def cancelled(cur: Cursor[Any], env: PublishedEnvelope, payload: o.OrderCancelled) -> None:
    del payload
    cur.execute(
        "INSERT INTO lab_orders (order_id, patient_id, cancelled_at, cancel_reason) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (order_id) DO UPDATE SET "
        "cancelled_at = EXCLUDED.cancelled_at, cancel_reason = EXCLUDED.cancel_reason",
        (env.aggregate_id, env.patient_id, env.occurred_at, env.reason),
    )


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute("DELETE FROM lab_orders WHERE patient_id = %s", (patient_id,))


PROJECTION = Projection(
    name="orders",
    topics=(PATIENTS.name, ORDERS.name, RESULTS.name),
    tables=("lab_orders",),
    ddl=DDL,
    handlers={
        "order.placed": placed,
        "specimen.collected": collected,
        "result.received": resulted,
        "order.cancelled": cancelled,
    },
    purge=purge,
)
