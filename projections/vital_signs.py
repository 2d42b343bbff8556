"""``vital_signs``: every vital sign, body weight and height ever measured, one row each.

``latest_vitals`` (``patient_chart``) keeps the newest value per vital for the chart; FHIR
serves each measurement as its own Observation, so this table keeps them all. Blood
pressure is one row (systolic in ``value``, ``diastolic`` beside it), as the vital-signs
profile's panel has both as components. A row's id is derived from the event and the
vital, so a redelivered event or a rebuild gives the same id.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import observations as obs
from events.domain.topics import OBSERVATIONS, PATIENTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection

DDL = """
CREATE TABLE IF NOT EXISTS vital_signs (
    observation_id uuid PRIMARY KEY,
    event_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    vital text NOT NULL,
    value double precision NOT NULL,
    diastolic double precision,
    unit text NOT NULL,
    flag text,
    diastolic_flag text,
    measured_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS vital_signs_patient ON vital_signs (patient_id, measured_at);
"""

# The UCUM unit each vital is recorded in (the payload's field names say the unit).
UNITS = {
    "heart_rate": "/min",
    "blood_pressure": "mm[Hg]",
    "temperature_c": "Cel",
    "respiratory_rate": "/min",
    "spo2": "%",
}

INSERT = (
    "INSERT INTO vital_signs (observation_id, event_id, patient_id, vital, value, diastolic, "
    "unit, flag, diastolic_flag, measured_at, recorded_at, position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (observation_id) DO NOTHING"
)


def observation_id(event_id: UUID, vital: str) -> UUID:
    """The id of one measurement: the same for every delivery and rebuild of its event."""
    return uuid.uuid5(event_id, vital)


def _row(
    env: PublishedEnvelope,
    vital: str,
    value: float,
    unit: str,
    flag: str | None = None,
    diastolic: float | None = None,
    diastolic_flag: str | None = None,
) -> tuple[Any, ...]:
    return (
        observation_id(env.event_id, vital),
        env.event_id,
        env.patient_id,
        vital,
        value,
        diastolic,
        unit,
        flag,
        diastolic_flag,
        env.occurred_at,
        env.recorded_at,
        env.position,
    )


def vitals_recorded(cur: Cursor[Any], env: PublishedEnvelope, payload: obs.VitalsRecorded) -> None:
    measured = payload.values()
    flags = payload.flags
    rows = [
        _row(env, vital, value, UNITS[vital], flags.get(vital))
        for vital, value in measured.items()
        if vital not in ("systolic_bp", "diastolic_bp")
    ]
    systolic, diastolic = measured.get("systolic_bp"), measured.get("diastolic_bp")
    if systolic is not None:
        rows.append(
            _row(
                env,
                "blood_pressure",
                systolic,
                UNITS["blood_pressure"],
                flags.get("systolic_bp"),
                diastolic,
                flags.get("diastolic_bp"),
            )
        )
    elif diastolic is not None:  # a diastolic alone still is a measurement: keep it
        rows.append(
            _row(
                env,
                "diastolic_bp",
                diastolic,
                UNITS["blood_pressure"],
                flags.get("diastolic_bp"),
            )
        )
    cur.executemany(INSERT, rows)


def observation_recorded(
    cur: Cursor[Any], env: PublishedEnvelope, payload: obs.ObservationRecorded
) -> None:
    cur.execute(INSERT, _row(env, payload.kind, payload.value, payload.unit))


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute("DELETE FROM vital_signs WHERE patient_id = %s", (patient_id,))


PROJECTION = Projection(
    name="vital_signs",
    topics=(PATIENTS.name, OBSERVATIONS.name),
    tables=("vital_signs",),
    ddl=DDL,
    handlers={
        "vitals.recorded": vitals_recorded,
        "observation.recorded": observation_recorded,
    },
    purge=purge,
)
