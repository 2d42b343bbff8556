"""``lab_results``: per patient and analyte, value, status, range, flag, previous value, trend.

A result's previous value is the patient's last earlier result for the same analyte
(by store position); the trend compares the two in the analyte's canonical unit when
their units differ, and only plain numbers (no trend to or from ``<0.01`` or text). A value
is a number, a number with its comparator (``value_text`` keeps ``<0.01``) or text; flag
is null where no numeric flag applies. Amendments replace the value and status, keep the
original and are marked (finalising a preliminary result unchanged is not an amendment).
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
    value double precision,
    comparator text,
    value_text text,
    value_type text NOT NULL DEFAULT 'numeric',
    status text NOT NULL DEFAULT 'final',
    unit text,
    reference_low double precision,
    reference_high double precision,
    flag text,
    previous_value double precision,
    previous_unit text,
    trend text,
    amended boolean NOT NULL DEFAULT false,
    original_value double precision,
    original_text text,
    amend_reason text,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL,
    seq integer NOT NULL
);
CREATE INDEX IF NOT EXISTS lab_results_patient_code
    ON lab_results (patient_id, code, position, seq);
CREATE INDEX IF NOT EXISTS lab_results_patient_recent ON lab_results (patient_id, position DESC);
-- The encounter the result belongs to (null: none, or received before encounters).
ALTER TABLE lab_results ADD COLUMN IF NOT EXISTS encounter_id uuid;
"""


def _comparable(code: str, value: float, unit: str) -> float | None:
    try:
        converted = to_canonical(code, value, unit)
    except ClinicalRuleViolation:
        return None
    return converted[0] if converted is not None else None


def trend_between(
    code: str, previous: tuple[float, str] | None, value: float | None, unit: str | None
) -> str | None:
    """The trend from the previous plain number; None for text, comparators or no previous."""
    if previous is None or value is None or unit is None:
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
        "SELECT value, unit, comparator FROM lab_results WHERE patient_id = %s AND code = %s "
        "AND (position, seq) < (%s, %s) ORDER BY position DESC, seq DESC LIMIT 1",
        (patient_id, code, position, seq),
    ).fetchone()
    if row is None or row[0] is None or row[1] is None or row[2] is not None:
        return None  # no trend from text or from a bound such as <0.01
    return float(row[0]), str(row[1])


def _plain(payload: o.ReportedValue) -> tuple[float | None, str | None]:
    """The plain number of a value (None for text and comparator values) and its unit."""
    if payload.comparator is not None:
        return None, payload.unit
    return payload.value, payload.unit


def received(cur: Cursor[Any], env: PublishedEnvelope, payload: o.ResultReceived) -> None:
    for seq, r in enumerate(payload.results):
        previous = _previous(cur, env.patient_id, r.code, env.position, seq)
        cur.execute(
            "INSERT INTO lab_results (result_id, order_id, patient_id, code, name, value, "
            "comparator, value_text, value_type, status, unit, reference_low, reference_high, "
            "flag, previous_value, previous_unit, trend, observed_at, recorded_at, position, seq, "
            "encounter_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (result_id) DO NOTHING",
            (
                r.result_id,
                env.aggregate_id,
                env.patient_id,
                r.code,
                r.name,
                r.value,
                r.comparator,
                r.value_text,
                r.value_type,
                r.status,
                r.unit,
                r.reference_low,
                r.reference_high,
                r.flag,
                previous[0] if previous else None,
                previous[1] if previous else None,
                trend_between(r.code, previous, *_plain(r)),
                env.occurred_at,
                env.recorded_at,
                env.position,
                seq,
                payload.encounter_id,
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
    previous = (
        (float(previous_value), str(previous_unit))
        if previous_value is not None and previous_unit is not None
        else None
    )
    # ``amended`` marks a change of value; finalising a preliminary result is not one
    # unless the value changed, but the status is always the latest.
    cur.execute(
        "UPDATE lab_results SET amended = amended OR %(changed)s, "
        "original_value = CASE WHEN %(changed)s AND NOT amended THEN value "
        "ELSE original_value END, "
        "original_text = CASE WHEN %(changed)s AND NOT amended THEN value_text "
        "ELSE original_text END, "
        "value = %(value)s, comparator = %(comparator)s, value_text = %(text)s, "
        "value_type = %(type)s, status = %(status)s, unit = %(unit)s, "
        "reference_low = %(low)s, reference_high = %(high)s, flag = %(flag)s, "
        "trend = %(trend)s, amend_reason = COALESCE(%(reason)s, amend_reason) "
        "WHERE result_id = %(id)s",
        {
            "changed": payload.status == "corrected"
            or (payload.value, payload.value_text, payload.unit)
            != (payload.previous_value, payload.previous_text, payload.previous_unit),
            "value": payload.value,
            "comparator": payload.comparator,
            "text": payload.value_text,
            "type": payload.value_type,
            "status": payload.status,
            "unit": payload.unit,
            "low": payload.reference_low,
            "high": payload.reference_high,
            "flag": payload.flag,
            "trend": trend_between(code, previous, *_plain(payload)),
            "reason": env.reason,
            "id": payload.result_id,
        },
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
