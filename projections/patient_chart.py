"""``patient_chart``: demographics, allergies (active, inactive, refuted; criticality),
"no known drug allergies", latest vital signs, encounters (open and past), merges.

``patient_merges`` has one row per record ever merged: whom it points to and whether that
merge is in force. It is written only from the merged record's copy of ``patient.merged`` /
``patient.unmerged`` (the survivor's copy is ignored), so the row follows its record's
Kafka partition, in store order, and a rebuild from the store gives the same row; the
``position`` guard keeps a redelivered older event from undoing a newer one. Nothing else
moves when records merge: every row stays under its own patient id and the chart query
gathers the group (``projections.chart``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import encounters as enc
from events.domain.payloads import merges as mp
from events.domain.payloads import observations as obs
from events.domain.payloads import patients as p
from events.domain.topics import OBSERVATIONS, PATIENTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection

DDL = """
CREATE TABLE IF NOT EXISTS patients (
    patient_id uuid PRIMARY KEY,
    mrn text NOT NULL,
    family_name text NOT NULL,
    given_names text[] NOT NULL,
    birth_date date NOT NULL,
    sex text NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_mrn ON patients (mrn);
CREATE INDEX IF NOT EXISTS patients_family_name ON patients (lower(family_name));
CREATE TABLE IF NOT EXISTS allergies (
    allergy_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    substance text NOT NULL,
    substance_code text,
    reaction text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    recorded_at timestamptz NOT NULL,
    refuted_at timestamptz,
    refuted_reason text
);
CREATE INDEX IF NOT EXISTS allergies_patient ON allergies (patient_id);
ALTER TABLE allergies ADD COLUMN IF NOT EXISTS criticality text;
ALTER TABLE allergies ADD COLUMN IF NOT EXISTS status_changed_at timestamptz;
ALTER TABLE allergies ADD COLUMN IF NOT EXISTS status_reason text;
-- When "no known drug allergies" was stated; cleared when an allergy is recorded or
-- made active again.
ALTER TABLE patients ADD COLUMN IF NOT EXISTS no_known_allergies_at timestamptz;
CREATE TABLE IF NOT EXISTS latest_vitals (
    patient_id uuid NOT NULL,
    vital text NOT NULL,
    value double precision NOT NULL,
    flag text,
    measured_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (patient_id, vital)
);
-- Body weight and height share latest_vitals (vital body_weight / body_height, in kg / cm).
ALTER TABLE latest_vitals ADD COLUMN IF NOT EXISTS unit text;
CREATE TABLE IF NOT EXISTS encounters (
    encounter_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    encounter_class text NOT NULL,
    ward text NOT NULL,
    room text,
    bed text,
    attending_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    disposition text,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters (patient_id);
ALTER TABLE encounters ADD COLUMN IF NOT EXISTS consulting uuid[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS patient_merges (
    merged_id uuid PRIMARY KEY,
    survivor_id uuid NOT NULL,
    in_force boolean NOT NULL,
    merged_at timestamptz NOT NULL,
    unmerged_at timestamptz,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS patient_merges_survivor ON patient_merges (survivor_id);
"""


def registered(cur: Cursor[Any], env: PublishedEnvelope, payload: p.PatientRegistered) -> None:
    cur.execute(
        "INSERT INTO patients (patient_id, mrn, family_name, given_names, birth_date, sex, "
        "registered_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (patient_id) DO NOTHING",
        (
            env.patient_id,
            payload.mrn,
            payload.family_name,
            list(payload.given_names),
            payload.birth_date,
            payload.sex,
            env.occurred_at,
            env.recorded_at,
        ),
    )


def demographics_updated(
    cur: Cursor[Any], env: PublishedEnvelope, payload: p.DemographicsUpdated
) -> None:
    cur.execute(
        "UPDATE patients SET family_name = COALESCE(%s, family_name), "
        "given_names = COALESCE(%s, given_names), birth_date = COALESCE(%s, birth_date), "
        "sex = COALESCE(%s, sex), updated_at = %s WHERE patient_id = %s",
        (
            payload.family_name,
            list(payload.given_names) if payload.given_names is not None else None,
            payload.birth_date,
            payload.sex,
            env.recorded_at,
            env.patient_id,
        ),
    )


def _clear_no_known_allergies(cur: Cursor[Any], patient_id: UUID | None) -> None:
    cur.execute(
        "UPDATE patients SET no_known_allergies_at = NULL WHERE patient_id = %s", (patient_id,)
    )


def allergy_recorded(cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyRecorded) -> None:
    cur.execute(
        "INSERT INTO allergies (allergy_id, patient_id, substance, substance_code, reaction, "
        "severity, criticality, status, recorded_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', %s) ON CONFLICT (allergy_id) DO NOTHING",
        (
            payload.allergy_id,
            env.patient_id,
            payload.substance,
            payload.substance_code,
            payload.reaction,
            payload.severity,
            payload.criticality,
            env.occurred_at,
        ),
    )
    _clear_no_known_allergies(cur, env.patient_id)


def allergy_refuted(cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyRefuted) -> None:
    cur.execute(
        "UPDATE allergies SET status = 'refuted', refuted_at = %s, refuted_reason = %s, "
        "status_changed_at = %s, status_reason = %s WHERE allergy_id = %s",
        (env.occurred_at, env.reason, env.occurred_at, env.reason, payload.allergy_id),
    )


def allergy_status_changed(
    cur: Cursor[Any], env: PublishedEnvelope, payload: p.AllergyStatusChanged
) -> None:
    cur.execute(
        "UPDATE allergies SET status = %s, status_changed_at = %s, status_reason = %s "
        "WHERE allergy_id = %s",
        (payload.status, env.occurred_at, env.reason, payload.allergy_id),
    )
    if payload.status == "active":
        _clear_no_known_allergies(cur, env.patient_id)


def no_known_allergies(
    cur: Cursor[Any], env: PublishedEnvelope, payload: p.NoKnownAllergies
) -> None:
    del payload
    cur.execute(
        "UPDATE patients SET no_known_allergies_at = %s WHERE patient_id = %s",
        (env.occurred_at, env.patient_id),
    )


def vitals_recorded(cur: Cursor[Any], env: PublishedEnvelope, payload: obs.VitalsRecorded) -> None:
    measured = payload.values()
    cur.execute(
        "INSERT INTO latest_vitals (patient_id, vital, value, flag, measured_at, position) "
        "SELECT %s, v.vital, v.value, v.flag, %s, %s "
        "FROM unnest(%s::text[], %s::float8[], %s::text[]) AS v(vital, value, flag) "
        "ON CONFLICT (patient_id, vital) DO UPDATE SET "
        "value = EXCLUDED.value, flag = EXCLUDED.flag, measured_at = EXCLUDED.measured_at, "
        "position = EXCLUDED.position "
        "WHERE (EXCLUDED.measured_at, EXCLUDED.position) > "
        "(latest_vitals.measured_at, latest_vitals.position)",
        (
            env.patient_id,
            env.occurred_at,
            env.position,
            list(measured),
            [float(v) for v in measured.values()],
            [payload.flags.get(vital) for vital in measured],
        ),
    )


def observation_recorded(
    cur: Cursor[Any], env: PublishedEnvelope, payload: obs.ObservationRecorded
) -> None:
    """The latest body weight or height (by clinical time, then store order)."""
    cur.execute(
        "INSERT INTO latest_vitals (patient_id, vital, value, unit, measured_at, position) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_id, vital) DO UPDATE SET "
        "value = EXCLUDED.value, unit = EXCLUDED.unit, measured_at = EXCLUDED.measured_at, "
        "position = EXCLUDED.position "
        "WHERE (EXCLUDED.measured_at, EXCLUDED.position) > "
        "(latest_vitals.measured_at, latest_vitals.position)",
        (env.patient_id, payload.kind, payload.value, payload.unit, env.occurred_at, env.position),
    )


def encounter_started(
    cur: Cursor[Any], env: PublishedEnvelope, payload: enc.EncounterStarted
) -> None:
    where = payload.location
    cur.execute(
        "INSERT INTO encounters (encounter_id, patient_id, encounter_class, ward, room, bed, "
        "attending_id, consulting, started_at, position) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (encounter_id) DO NOTHING",
        (
            env.aggregate_id,
            env.patient_id,
            payload.encounter_class,
            where.ward,
            where.room,
            where.bed,
            payload.attending_id,
            list(payload.consulting_ids),
            env.occurred_at,
            env.position,
        ),
    )


# Each change below applies once, in store order: ``position < %s`` makes a redelivered
# older event change nothing.


def encounter_transferred(
    cur: Cursor[Any], env: PublishedEnvelope, payload: enc.EncounterTransferred
) -> None:
    where = payload.location
    cur.execute(
        "UPDATE encounters SET ward = %s, room = %s, bed = %s, position = %s "
        "WHERE encounter_id = %s AND position < %s",
        (where.ward, where.room, where.bed, env.position, env.aggregate_id, env.position),
    )


def encounter_updated(
    cur: Cursor[Any], env: PublishedEnvelope, payload: enc.EncounterUpdated
) -> None:
    cur.execute(
        "UPDATE encounters SET attending_id = COALESCE(%s, attending_id), "
        "encounter_class = COALESCE(%s, encounter_class), "
        "consulting = ARRAY(SELECT DISTINCT c FROM unnest(consulting || %s::uuid[]) AS c "
        "WHERE c <> ALL(%s::uuid[]) ORDER BY c), position = %s "
        "WHERE encounter_id = %s AND position < %s",
        (
            payload.attending_id,
            payload.encounter_class,
            list(payload.consulting_added),
            list(payload.consulting_removed),
            env.position,
            env.aggregate_id,
            env.position,
        ),
    )


def encounter_ended(cur: Cursor[Any], env: PublishedEnvelope, payload: enc.EncounterEnded) -> None:
    cur.execute(
        "UPDATE encounters SET ended_at = %s, disposition = %s, position = %s "
        "WHERE encounter_id = %s AND position < %s",
        (env.occurred_at, payload.disposition, env.position, env.aggregate_id, env.position),
    )


def patient_merged(cur: Cursor[Any], env: PublishedEnvelope, payload: mp.PatientMerged) -> None:
    if env.patient_id != payload.merged_id:
        return  # the survivor's copy: the merged record's copy carries the row
    cur.execute(
        "INSERT INTO patient_merges (merged_id, survivor_id, in_force, merged_at, position) "
        "VALUES (%s, %s, true, %s, %s) ON CONFLICT (merged_id) DO UPDATE SET "
        "survivor_id = EXCLUDED.survivor_id, in_force = true, merged_at = EXCLUDED.merged_at, "
        "unmerged_at = NULL, position = EXCLUDED.position "
        "WHERE patient_merges.position < EXCLUDED.position",
        (payload.merged_id, payload.survivor_id, env.occurred_at, env.position),
    )


def patient_unmerged(cur: Cursor[Any], env: PublishedEnvelope, payload: mp.PatientUnmerged) -> None:
    if env.patient_id != payload.merged_id:
        return
    cur.execute(
        "UPDATE patient_merges SET in_force = false, unmerged_at = %s, position = %s "
        "WHERE merged_id = %s AND survivor_id = %s AND position < %s",
        (env.occurred_at, env.position, payload.merged_id, payload.survivor_id, env.position),
    )


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    for table in ("encounters", "latest_vitals", "allergies", "patients"):
        cur.execute(f"DELETE FROM {table} WHERE patient_id = %s", (patient_id,))  # noqa: S608
    # Its own row only: rows of records merged into an erased survivor stay as written (the
    # chart ignores them: a survivor without a ``patients`` row answers nothing), so a late
    # copy from their partition cannot bring back a row a rebuild would not have.
    cur.execute("DELETE FROM patient_merges WHERE merged_id = %s", (patient_id,))


PROJECTION = Projection(
    name="patient_chart",
    topics=(PATIENTS.name, OBSERVATIONS.name),
    tables=("patients", "allergies", "latest_vitals", "encounters", "patient_merges"),
    ddl=DDL,
    handlers={
        "patient.registered": registered,
        "patient.demographics_updated": demographics_updated,
        "allergy.recorded": allergy_recorded,
        "allergy.refuted": allergy_refuted,
        "allergy.status_changed": allergy_status_changed,
        "allergy.none_known": no_known_allergies,
        "vitals.recorded": vitals_recorded,
        "observation.recorded": observation_recorded,
        "encounter.started": encounter_started,
        "encounter.transferred": encounter_transferred,
        "encounter.updated": encounter_updated,
        "encounter.ended": encounter_ended,
        "patient.merged": patient_merged,
        "patient.unmerged": patient_unmerged,
    },
    purge=purge,
)
