"""``access_audit``: every chart read and break-glass (who, whose chart, when, why); care teams."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads import access as acc
from events.domain.payloads import patients as p
from events.domain.topics import ACCESS, PATIENTS
from events.store.published import PublishedEnvelope
from projections.engine.base import Projection

DDL = """
CREATE TABLE IF NOT EXISTS access_audit (
    event_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL,
    event_type text NOT NULL,
    section text,
    purpose text,
    break_glass boolean NOT NULL,
    reason text,
    expires_at timestamptz,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS access_audit_patient ON access_audit (patient_id, recorded_at);
CREATE INDEX IF NOT EXISTS access_audit_user ON access_audit (user_id, recorded_at);
CREATE INDEX IF NOT EXISTS access_audit_break_glass ON access_audit (recorded_at) WHERE break_glass;
CREATE TABLE IF NOT EXISTS care_team (
    patient_id uuid NOT NULL,
    user_id uuid NOT NULL,
    added_at timestamptz NOT NULL,
    added_by uuid NOT NULL,
    PRIMARY KEY (patient_id, user_id)
);
CREATE INDEX IF NOT EXISTS care_team_user ON care_team (user_id);
"""

INSERT = (
    "INSERT INTO access_audit (event_id, patient_id, user_id, role, event_type, section, "
    "purpose, break_glass, reason, expires_at, occurred_at, recorded_at, position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)


def viewed(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.ChartViewed) -> None:
    cur.execute(
        INSERT,
        (
            env.event_id,
            env.patient_id,
            env.actor.user_id,
            env.actor.role,
            env.event_type,
            payload.section,
            payload.purpose,
            payload.break_glass,
            env.reason,
            None,
            env.occurred_at,
            env.recorded_at,
            env.position,
        ),
    )


def break_glass(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.BreakGlassGranted) -> None:
    cur.execute(
        INSERT,
        (
            env.event_id,
            env.patient_id,
            env.actor.user_id,
            env.actor.role,
            env.event_type,
            None,
            "emergency",
            True,
            env.reason,
            payload.expires_at,
            env.occurred_at,
            env.recorded_at,
            env.position,
        ),
    )


def care_team_changed(cur: Cursor[Any], env: PublishedEnvelope, payload: p.CareTeamChanged) -> None:
    if payload.change == "added":
        cur.execute(
            "INSERT INTO care_team (patient_id, user_id, added_at, added_by) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (env.patient_id, payload.user_id, env.occurred_at, env.actor.user_id),
        )
    else:
        cur.execute(
            "DELETE FROM care_team WHERE patient_id = %s AND user_id = %s",
            (env.patient_id, payload.user_id),
        )


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute("DELETE FROM access_audit WHERE patient_id = %s", (patient_id,))
    cur.execute("DELETE FROM care_team WHERE patient_id = %s", (patient_id,))


PROJECTION = Projection(
    name="access_audit",
    topics=(PATIENTS.name, ACCESS.name),
    tables=("access_audit", "care_team"),
    ddl=DDL,
    handlers={
        "chart.viewed": viewed,
        "access.break_glass": break_glass,
        "care_team.changed": care_team_changed,
    },
    purge=purge,
)
