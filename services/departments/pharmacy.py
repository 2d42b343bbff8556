"""The pharmacy's own consumer: verification items with the alerts it computes on arrival.

Every ``medication.prescribed`` and ``medication.changed`` becomes an item (its id is the
event's id, so a decision can name it as its cause). Alerts are computed by the pharmacy at
that moment from what it has seen: drug-allergy (same substance or a cross-reacting class,
active allergies only), drug-drug interactions and duplicate therapy against the patient's
other active drugs, and dose limits (single by route, per 24 h, by age from the birth date
it has seen). A change supersedes the pending item; a discontinuation withdraws it.

A new allergy (``allergy.recorded``) or one made active again (``allergy.status_changed``)
re-screens the patient's active drugs: each drug it alerts for gets an ``allergy_rescreen``
item with all of its current alerts (id derived from the event and the order, so a
redelivery adds nothing), superseding the order's pending item. The pharmacist decides it
like any item; for an order verified already, it confirms or rejects that verification.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from psycopg import Cursor

from events.domain.payloads import medications as m
from events.domain.payloads import patients as p
from events.domain.rules.dose_limits import age_in_years, weight_dose_alerts, weight_gaps
from events.domain.rules.interactions import duplicate_therapy_alerts, interaction_alerts
from events.domain.rules.medications import (
    allergy_alerts,
    dose_alerts,
    dose_gaps,
    screening_gaps,
)
from events.domain.topics import MEDICATIONS, OBSERVATIONS, PATIENTS
from events.store.published import PublishedEnvelope
from projections.engine.base import MessageRefused, Projection
from services.departments.wards import purge_wards, ward_ddl, ward_handlers
from services.departments.weights import DDL as WEIGHTS_DDL
from services.departments.weights import WEIGHTS, latest_weight, observed, purge_weights

# Re-screen item ids: uuid5 of this namespace and "<allergy event id>:<medication id>".
RESCREEN_NAMESPACE = UUID("3f0f6f1e-8a61-4c55-9d0c-6a2b1f9e4c21")
RESCREEN = "allergy_rescreen"

WARDS = "pharmacy_wards"
DDL = """
CREATE TABLE IF NOT EXISTS pharmacy_patients (
    patient_id uuid PRIMARY KEY,
    birth_date date NOT NULL
);
CREATE TABLE IF NOT EXISTS pharmacy_allergies (
    allergy_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    substance text NOT NULL,
    substance_code text,
    active boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS pharmacy_allergies_patient ON pharmacy_allergies (patient_id);
CREATE TABLE IF NOT EXISTS pharmacy_drugs (
    medication_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    drug_code text NOT NULL,
    drug_name text NOT NULL,
    dose double precision NOT NULL,
    dose_unit text NOT NULL,
    active boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS pharmacy_drugs_patient ON pharmacy_drugs (patient_id) WHERE active;
CREATE TABLE IF NOT EXISTS pharmacy_items (
    item_id uuid PRIMARY KEY,
    medication_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    order_version integer NOT NULL,
    kind text NOT NULL,
    drug_code text NOT NULL,
    drug_name text NOT NULL,
    dose double precision NOT NULL,
    dose_unit text NOT NULL,
    route text NOT NULL,
    frequency text NOT NULL,
    prescriber uuid NOT NULL,
    alerts jsonb NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    decided_by uuid,
    decision_reason text
);
-- Why the prescriber went past an alert: the pharmacist sees it beside the alerts.
ALTER TABLE pharmacy_items ADD COLUMN IF NOT EXISTS prescriber_override text;
CREATE INDEX IF NOT EXISTS pharmacy_items_queue ON pharmacy_items (status, created_at);
CREATE INDEX IF NOT EXISTS pharmacy_items_medication ON pharmacy_items (medication_id);
"""


def registered(cur: Cursor[Any], env: PublishedEnvelope, payload: p.PatientRegistered) -> None:
    cur.execute(
        "INSERT INTO pharmacy_patients (patient_id, birth_date) VALUES (%s, %s) "
        "ON CONFLICT (patient_id) DO NOTHING",
        (env.patient_id, payload.birth_date),
    )


def demographics_updated(
    cur: Cursor[Any], env: PublishedEnvelope, payload: p.DemographicsUpdated
) -> None:
    if payload.birth_date is not None:
        cur.execute(
            "INSERT INTO pharmacy_patients (patient_id, birth_date) VALUES (%s, %s) "
            "ON CONFLICT (patient_id) DO UPDATE SET birth_date = EXCLUDED.birth_date",
            (env.patient_id, payload.birth_date),
        )


def allergy_recorded(cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyRecorded) -> None:
    cur.execute(
        "INSERT INTO pharmacy_allergies (allergy_id, patient_id, substance, substance_code, "
        "active) VALUES (%s, %s, %s, %s, true) ON CONFLICT (allergy_id) DO NOTHING",
        (payload.allergy_id, env.patient_id, payload.substance, payload.substance_code),
    )
    _rescreen(cur, env, payload.substance, payload.substance_code)


def allergy_status_changed(
    cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyStatusChanged
) -> None:
    row = cur.execute(
        "UPDATE pharmacy_allergies SET active = %s WHERE allergy_id = %s "
        "RETURNING substance, substance_code",
        (payload.status == "active", payload.allergy_id),
    ).fetchone()
    if row is None:
        raise MessageRefused("allergy.status_changed for an allergy the pharmacy has not seen")
    if payload.status == "active":
        _rescreen(cur, env, str(row[0]), row[1])


def allergy_refuted(cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyRefuted) -> None:
    del env
    cur.execute(
        "UPDATE pharmacy_allergies SET active = false WHERE allergy_id = %s", (payload.allergy_id,)
    )


def _age(cur: Cursor[Any], patient_id: UUID | None, on: date) -> int | None:
    row = cur.execute(
        "SELECT birth_date FROM pharmacy_patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return None if row is None else age_in_years(row[0], on)


def _alerts(
    cur: Cursor[Any],
    env: PublishedEnvelope,
    medication_id: UUID,
    order: tuple[Any, ...],
) -> list[str]:
    """All alerts of an order (code, name, dose, unit, route, frequency, ...) for its patient."""
    code, name, dose, unit, route, frequency = order[:6]
    patient_id = env.patient_id
    age = _age(cur, patient_id, (env.occurred_at or env.recorded_at).date())
    allergies = cur.execute(
        "SELECT substance, substance_code FROM pharmacy_allergies WHERE patient_id = %s AND active",
        (patient_id,),
    ).fetchall()
    others = cur.execute(
        "SELECT drug_code, drug_name FROM pharmacy_drugs "
        "WHERE patient_id = %s AND active AND medication_id <> %s",
        (patient_id, medication_id),
    ).fetchall()
    other_drugs = [(str(r[0]), str(r[1])) for r in others]
    allergy_list = [(str(a[0]), a[1]) for a in allergies]
    weight = latest_weight(cur, patient_id)
    return (
        allergy_alerts(code, name, allergy_list)
        + interaction_alerts(code, name, other_drugs)
        + duplicate_therapy_alerts(code, name, other_drugs)
        + dose_alerts(code, dose, unit, route=route, frequency=frequency, age=age)
        + weight_dose_alerts(code, dose, unit, route=route, frequency=frequency, weight_kg=weight)
        + screening_gaps(code, name, allergy_list)
        + dose_gaps(code, frequency, route, age_known=age is not None)
        + weight_gaps(code, route, weight)
    )


def _rescreen(
    cur: Cursor[Any], env: PublishedEnvelope, substance: str, substance_code: str | None
) -> None:
    """A queue item for each active drug of the patient this allergy alerts for."""
    drugs = cur.execute(
        "SELECT DISTINCT ON (i.medication_id) i.medication_id, i.order_version, i.drug_code, "
        "i.drug_name, i.dose, i.dose_unit, i.route, i.frequency, i.prescriber, i.status "
        "FROM pharmacy_drugs d JOIN pharmacy_items i ON i.medication_id = d.medication_id "
        "WHERE d.patient_id = %s AND d.active "
        "ORDER BY i.medication_id, i.order_version DESC, i.created_at DESC",
        (env.patient_id,),
    ).fetchall()
    for medication_id, version, *order, latest_status in drugs:
        if latest_status == "rejected":
            continue  # a rejected order is not given; the prescriber must change it
        if not allergy_alerts(order[0], order[1], [(substance, substance_code)]):
            continue
        alerts = _alerts(cur, env, medication_id, tuple(order))
        item_id = uuid5(RESCREEN_NAMESPACE, f"{env.event_id}:{medication_id}")
        cur.execute(
            "UPDATE pharmacy_items SET status = 'superseded' WHERE medication_id = %s "
            "AND status = 'pending' AND item_id <> %s",
            (medication_id, item_id),
        )
        _insert_item(cur, item_id, medication_id, env, version, RESCREEN, order, alerts)


def _item(
    cur: Cursor[Any],
    env: PublishedEnvelope,
    kind: str,
    order: tuple[Any, ...],
    alerts: list[str],
    override: str | None,
) -> None:
    _insert_item(
        cur,
        env.event_id,
        env.aggregate_id,
        env,
        env.aggregate_version,
        kind,
        order,
        alerts,
        override,
    )


def _insert_item(
    cur: Cursor[Any],
    item_id: UUID,
    medication_id: UUID,
    env: PublishedEnvelope,
    version: int,
    kind: str,
    order: Any,
    alerts: list[str],
    override: str | None = None,
) -> None:
    drug_code, drug_name, dose, dose_unit, route, frequency, prescriber = order
    cur.execute(
        "INSERT INTO pharmacy_items (item_id, medication_id, patient_id, order_version, kind, "
        "drug_code, drug_name, dose, dose_unit, route, frequency, prescriber, alerts, status, "
        "created_at, prescriber_override) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s) "
        "ON CONFLICT (item_id) DO NOTHING",
        (
            item_id,
            medication_id,
            env.patient_id,
            version,
            kind,
            drug_code,
            drug_name,
            dose,
            dose_unit,
            route,
            frequency,
            prescriber,
            json.dumps(alerts),
            env.recorded_at,
            override,
        ),
    )


def prescribed(cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationPrescribed) -> None:
    order = (
        payload.drug_code,
        payload.drug_name,
        payload.dose,
        payload.dose_unit,
        payload.route,
        payload.frequency,
        payload.prescriber,
    )
    alerts = _alerts(cur, env, env.aggregate_id, order)
    cur.execute(
        "INSERT INTO pharmacy_drugs (medication_id, patient_id, drug_code, drug_name, dose, "
        "dose_unit, active) VALUES (%s, %s, %s, %s, %s, %s, true) "
        "ON CONFLICT (medication_id) DO NOTHING",
        (
            env.aggregate_id,
            env.patient_id,
            payload.drug_code,
            payload.drug_name,
            payload.dose,
            payload.dose_unit,
        ),
    )
    _item(cur, env, "prescribed", order, alerts, payload.override_reason)


def changed(cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationChanged) -> None:
    previous = cur.execute(
        "SELECT drug_code, drug_name, dose, dose_unit, route, frequency, prescriber "
        "FROM pharmacy_items WHERE medication_id = %s ORDER BY order_version DESC LIMIT 1",
        (env.aggregate_id,),
    ).fetchone()
    if previous is None:
        raise MessageRefused("medication.changed for an order the pharmacy has not seen")
    code, name, dose, unit, route, frequency, prescriber = previous
    dose = payload.dose if payload.dose is not None else dose
    unit = payload.dose_unit or unit
    frequency = payload.frequency or frequency
    cur.execute(
        "UPDATE pharmacy_items SET status = 'superseded' WHERE medication_id = %s "
        "AND status = 'pending'",
        (env.aggregate_id,),
    )
    cur.execute(
        "UPDATE pharmacy_drugs SET dose = %s, dose_unit = %s WHERE medication_id = %s",
        (dose, unit, env.aggregate_id),
    )
    order = (code, name, dose, unit, route, frequency, prescriber)
    alerts = _alerts(cur, env, env.aggregate_id, order)
    _item(cur, env, "changed", order, alerts, payload.override_reason)


def discontinued(
    cur: Cursor[Any], env: PublishedEnvelope, payload: m.MedicationDiscontinued
) -> None:
    del payload
    cur.execute(
        "UPDATE pharmacy_drugs SET active = false WHERE medication_id = %s", (env.aggregate_id,)
    )
    cur.execute(
        "UPDATE pharmacy_items SET status = 'withdrawn' WHERE medication_id = %s "
        "AND status = 'pending'",
        (env.aggregate_id,),
    )


def _decided(cur: Cursor[Any], env: PublishedEnvelope, item_id: UUID, status: str) -> None:
    cur.execute(
        "UPDATE pharmacy_items SET status = %s, decided_at = %s, decided_by = %s, "
        "decision_reason = %s WHERE item_id = %s",
        (status, env.recorded_at, env.actor.user_id, env.reason, item_id),
    )


def verified(cur: Cursor[Any], env: PublishedEnvelope, payload: m.PharmacyVerified) -> None:
    _decided(cur, env, payload.item_id, "verified")


def rejected(cur: Cursor[Any], env: PublishedEnvelope, payload: m.PharmacyRejected) -> None:
    _decided(cur, env, payload.item_id, "rejected")


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    for table in ("pharmacy_items", "pharmacy_drugs", "pharmacy_allergies", "pharmacy_patients"):
        cur.execute(f"DELETE FROM {table} WHERE patient_id = %s", (patient_id,))  # noqa: S608
    purge_wards(cur, WARDS, patient_id)
    purge_weights(cur, patient_id)


PROJECTION = Projection(
    name="pharmacy",
    topics=(PATIENTS.name, MEDICATIONS.name, OBSERVATIONS.name),
    tables=(
        "pharmacy_patients",
        "pharmacy_allergies",
        "pharmacy_drugs",
        "pharmacy_items",
        WARDS,
        WEIGHTS,
    ),
    ddl=DDL + ";\n" + ward_ddl(WARDS) + ";\n" + WEIGHTS_DDL,
    handlers={
        **ward_handlers(WARDS),
        "observation.recorded": observed,
        "patient.registered": registered,
        "patient.demographics_updated": demographics_updated,
        "allergy.recorded": allergy_recorded,
        "allergy.refuted": allergy_refuted,
        "allergy.status_changed": allergy_status_changed,
        "medication.prescribed": prescribed,
        "medication.changed": changed,
        "medication.discontinued": discontinued,
        "pharmacy.verified": verified,
        "pharmacy.rejected": rejected,
    },
    purge=purge,
)
