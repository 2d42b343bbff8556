"""``medications``: the active list per patient and every order's full history (who, when, why)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import medications as m
from events.domain.payloads.base import Payload
from events.domain.topics import MEDICATIONS, PATIENTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection

DDL = """
CREATE TABLE IF NOT EXISTS medication_orders (
    medication_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    drug_code text NOT NULL,
    drug_name text NOT NULL,
    dose double precision NOT NULL,
    dose_unit text NOT NULL,
    route text NOT NULL,
    frequency text NOT NULL,
    prescriber uuid NOT NULL,
    status text NOT NULL,
    verification text NOT NULL,
    prescribed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    administrations integer NOT NULL DEFAULT 0,
    last_administered_at timestamptz
);
CREATE INDEX IF NOT EXISTS medication_orders_patient ON medication_orders (patient_id, status);
-- The encounter it was prescribed in (null: none was open, or prescribed before encounters).
ALTER TABLE medication_orders ADD COLUMN IF NOT EXISTS encounter_id uuid;
CREATE TABLE IF NOT EXISTS medication_history (
    event_id uuid PRIMARY KEY,
    medication_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    event_type text NOT NULL,
    actor_user_id uuid NOT NULL,
    actor_role text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    reason text,
    details jsonb NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS medication_history_order ON medication_history (medication_id, position);
CREATE INDEX IF NOT EXISTS medication_history_patient ON medication_history (patient_id);
"""


def _history(cur: Cursor[Any], env: PublishedEnvelope, payload: Payload) -> None:
    cur.execute(
        "INSERT INTO medication_history (event_id, medication_id, patient_id, event_type, "
        "actor_user_id, actor_role, occurred_at, recorded_at, reason, details, position) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (
            env.event_id,
            env.aggregate_id,
            env.patient_id,
            env.event_type,
            env.actor.user_id,
            env.actor.role,
            env.occurred_at,
            env.recorded_at,
            env.reason,
            json.dumps(payload.model_dump(mode="json")),
            env.position,
        ),
    )


def prescribed(cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationPrescribed) -> None:
    cur.execute(
        "INSERT INTO medication_orders (medication_id, patient_id, drug_code, drug_name, dose, "
        "dose_unit, route, frequency, prescriber, status, verification, prescribed_at, "
        "updated_at, encounter_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'active', 'pending', %s, %s, %s) "
        "ON CONFLICT (medication_id) DO NOTHING",
        (
            env.aggregate_id,
            env.patient_id,
            payload.drug_code,
            payload.drug_name,
            payload.dose,
            payload.dose_unit,
            payload.route,
            payload.frequency,
            payload.prescriber,
            env.occurred_at,
            env.recorded_at,
            payload.encounter_id,
        ),
    )
    _history(cur, env, payload)


def changed(cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationChanged) -> None:
    cur.execute(
        "UPDATE medication_orders SET dose = COALESCE(%s, dose), "
        "dose_unit = COALESCE(%s, dose_unit), frequency = COALESCE(%s, frequency), "
        "verification = 'pending', updated_at = %s WHERE medication_id = %s",
        (payload.dose, payload.dose_unit, payload.frequency, env.recorded_at, env.aggregate_id),
    )
    _history(cur, env, payload)


def discontinued(
    cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationDiscontinued
) -> None:
    cur.execute(
        "UPDATE medication_orders SET status = 'discontinued', updated_at = %s "
        "WHERE medication_id = %s",
        (env.recorded_at, env.aggregate_id),
    )
    _history(cur, env, payload)


def administered(
    cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationAdministered
) -> None:
    cur.execute(
        "UPDATE medication_orders SET administrations = administrations + 1, "
        "last_administered_at = GREATEST(last_administered_at, %s) WHERE medication_id = %s",
        (payload.administered_at, env.aggregate_id),
    )
    _history(cur, env, payload)


def verified(cur: Cursor[Any], env: PublishedEnvelope, payload: m.PharmacyVerified) -> None:
    _verification(cur, env, payload, "verified")


def rejected(cur: Cursor[Any], env: PublishedEnvelope, payload: m.PharmacyRejected) -> None:
    _verification(cur, env, payload, "rejected")


def _verification(cur: Cursor[Any], env: PublishedEnvelope, payload: Payload, state: str) -> None:
    cur.execute(
        "UPDATE medication_orders SET verification = %s, updated_at = %s WHERE medication_id = %s",
        (state, env.recorded_at, env.aggregate_id),
    )
    _history(cur, env, payload)


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute("DELETE FROM medication_history WHERE patient_id = %s", (patient_id,))
    cur.execute("DELETE FROM medication_orders WHERE patient_id = %s", (patient_id,))


PROJECTION = Projection(
    name="medications",
    topics=(PATIENTS.name, MEDICATIONS.name),
    tables=("medication_orders", "medication_history"),
    ddl=DDL,
    handlers={
        "medication.prescribed": prescribed,
        "medication.changed": changed,
        "medication.discontinued": discontinued,
        "medication.administered": administered,
        "pharmacy.verified": verified,
        "pharmacy.rejected": rejected,
    },
    purge=purge,
)
