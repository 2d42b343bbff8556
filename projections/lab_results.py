"""``lab_results``: per patient and analyte, value, range, flag, previous value and trend.

A result's previous value is the patient's last earlier result for the same analyte
(by store position); the trend compares the two in the analyte's canonical unit when
their units differ. Amendments replace the value, keep the original and are marked.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads import orders as o
from events.domain.rules.results import trend
from events.domain.rules.units import to_canonical
from events.domain.topics import PATIENTS, RESULTS
from events.store.published import PublishedEnvelope
from projections.engine.base import MessageRefused, Projection

DDL = """
CREATE TABLE IF NOT EXISTS lab_results (
    result_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    value double precision NOT NULL,
    unit text NOT NULL,
    reference_low double precision,
    reference_high double precision,
    flag text NOT NULL,
    previous_value double precision,
    previous_unit text,
    trend text,
    amended boolean NOT NULL DEFAULT false,
    original_value double precision,
    amend_reason text,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL,
    seq integer NOT NULL
);
CREATE INDEX IF NOT EXISTS lab_results_patient_code
    ON lab_results (patient_id, code, position, seq);
CREATE INDEX IF NOT EXISTS lab_results_patient_recent ON lab_results (patient_id, position DESC);
"""


def _comparable(code: str, value: float, unit: str) -> float | None:
    try:
        converted = to_canonical(code, value, unit)
    except ClinicalRuleViolation:
        return None
    return converted[0] if converted is not None else None


def trend_between(
    code: str, previous: tuple[float, str] | None, value: float, unit: str
) -> str | None:
    if previous is None:
        return None
    previous_value, previous_unit = previous
    if previous_unit == unit:
        return trend(previous_value, value)
    before, now = _comparable(code, previous_value, previous_unit), _comparable(code, value, unit)
    return trend(before, now) if before is not None and now is not None else None


def _previous(
    cur: Cursor[Any], patient_id: UUID | None, code: str, position: int, seq: int
) -> tuple[float, str] | None:
    row = cur.execute(
        "SELECT value, unit FROM lab_results WHERE patient_id = %s AND code = %s "
        "AND (position, seq) < (%s, %s) ORDER BY position DESC, seq DESC LIMIT 1",
        (patient_id, code, position, seq),
    ).fetchone()
    return (float(row[0]), str(row[1])) if row else None


def received(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultReceived) -> None:
    for seq, r in enumerate(payload.results):
        previous = _previous(cur, env.patient_id, r.code, env.position, seq)
        cur.execute(
            "INSERT INTO lab_results (result_id, order_id, patient_id, code, name, value, unit, "
            "reference_low, reference_high, flag, previous_value, previous_unit, trend, "
            "observed_at, recorded_at, position, seq) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (result_id) DO NOTHING",
            (
                r.result_id,
                env.aggregate_id,
                env.patient_id,
                r.code,
                r.name,
                r.value,
                r.unit,
                r.reference_low,
                r.reference_high,
                r.flag,
                previous[0] if previous else None,
                previous[1] if previous else None,
                trend_between(r.code, previous, r.value, r.unit),
                env.occurred_at,
                env.recorded_at,
                env.position,
                seq,
            ),
        )


def amended(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultAmended) -> None:
    row = cur.execute(
        "SELECT code, previous_value, previous_unit FROM lab_results WHERE result_id = %s",
        (payload.result_id,),
    ).fetchone()
    if row is None:
        raise MessageRefused("result.amended for a result this projection has not seen")
    code, previous_value, previous_unit = row
    previous = (float(previous_value), str(previous_unit)) if previous_value is not None else None
    cur.execute(
        "UPDATE lab_results SET value = %s, unit = %s, reference_low = %s, reference_high = %s, "
        "flag = %s, trend = %s, amended = true, original_value = COALESCE(original_value, value), "
        "amend_reason = %s WHERE result_id = %s",
        (
            payload.value,
            payload.unit,
            payload.reference_low,
            payload.reference_high,
            payload.flag,
            trend_between(code, previous, payload.value, payload.unit),
            env.reason,
            payload.result_id,
        ),
    )


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute("DELETE FROM lab_results WHERE patient_id = %s", (patient_id,))


PROJECTION = Projection(
    name="lab_results",
    topics=(PATIENTS.name, RESULTS.name),
    tables=("lab_results",),
    ddl=DDL,
    handlers={"result.received": received, "result.amended": amended},
    purge=purge,
)
