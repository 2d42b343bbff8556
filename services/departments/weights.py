"""Each patient's latest body weight, for a department's per-kg dose screening.

The pharmacy keeps ``pharmacy_weights`` from ``observation.recorded`` on
``clinical.observations``: the measurement with the latest clinical time wins, whatever
order they arrive in, so a late-entered older weight does not replace a newer one.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads.observations import ObservationRecorded
from events.store.published import PublishedEnvelope

WEIGHTS = "pharmacy_weights"
DDL = f"""
CREATE TABLE IF NOT EXISTS {WEIGHTS} (
    patient_id uuid PRIMARY KEY,
    weight_kg double precision NOT NULL,
    measured_at timestamptz NOT NULL,
    position bigint NOT NULL
)"""


def observed(cur: Cursor[Any], env: PublishedEnvelope, payload: ObservationRecorded) -> None:
    if payload.kind != "body_weight":
        return
    cur.execute(
        f"INSERT INTO {WEIGHTS} (patient_id, weight_kg, measured_at, position) "  # noqa: S608
        "VALUES (%s, %s, %s, %s) ON CONFLICT (patient_id) DO UPDATE SET "
        "weight_kg = EXCLUDED.weight_kg, measured_at = EXCLUDED.measured_at, "
        f"position = EXCLUDED.position WHERE ({WEIGHTS}.measured_at, {WEIGHTS}.position) "
        "< (EXCLUDED.measured_at, EXCLUDED.position)",
        (env.patient_id, payload.value, env.occurred_at, env.position),
    )


def latest_weight(cur: Cursor[Any], patient_id: UUID | None) -> float | None:
    row = cur.execute(
        f"SELECT weight_kg FROM {WEIGHTS} WHERE patient_id = %s",  # noqa: S608
        (patient_id,),
    ).fetchone()
    return None if row is None else float(row[0])


def purge_weights(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute(f"DELETE FROM {WEIGHTS} WHERE patient_id = %s", (patient_id,))  # noqa: S608
