"""``access_audit``: every chart read and break-glass (who, whose chart, when, why), every
denied request and audit read; care teams."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

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
ALTER TABLE care_team ADD COLUMN IF NOT EXISTS encounter_id uuid;
ALTER TABLE care_team ADD COLUMN IF NOT EXISTS leaves_at timestamptz;
CREATE TABLE IF NOT EXISTS access_denials (
    event_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    role text NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    status integer NOT NULL,
    kind text NOT NULL,
    detail text NOT NULL,
    patient_id uuid,
    client text,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS access_denials_at ON access_denials (recorded_at);
CREATE TABLE IF NOT EXISTS audit_reads (
    event_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    role text NOT NULL,
    what text NOT NULL,
    patient_id uuid,
    subject_user_id uuid,
    rows integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
"""

INSERT = (
    "INSERT INTO access_audit (event_id, patient_id, user_id, role, event_type, section, "
    "purpose, break_glass, reason, expires_at, occurred_at, recorded_at, position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)


def _access(
    cur: Cursor[Any],
    env: PublishedEnvelope,
    section: str | None,
    purpose: str | None,
    break_glass: bool,
    expires_at: datetime | None,
    *,
    pseudonymous: bool = False,
) -> None:
    """One row of the access log; ``pseudonymous`` keeps only what the clear envelope says."""
    cur.execute(
        INSERT,
        (
            env.event_id,
            env.patient_id,
            env.actor.user_id,
            env.actor.role,
            env.event_type,
            section,
            purpose,
            break_glass,
            None if pseudonymous else env.reason,
            expires_at,
            env.recorded_at if pseudonymous else env.occurred_at,
            env.recorded_at,
            env.position,
        ),
    )


def viewed(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.ChartViewed) -> None:
    _access(cur, env, payload.section, payload.purpose, payload.break_glass, None)


def break_glass(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.BreakGlassGranted) -> None:
    _access(cur, env, None, "emergency", True, payload.expires_at)


def care_team_changed(cur: Cursor[Any], env: PublishedEnvelope, payload: p.CareTeamChanged) -> None:
    if payload.change == "added":
        # Re-adding a member who was leaving keeps them (and when they first joined).
        cur.execute(
            "INSERT INTO care_team (patient_id, user_id, added_at, added_by, encounter_id) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (patient_id, user_id) DO UPDATE "
            "SET leaves_at = NULL, encounter_id = EXCLUDED.encounter_id",
            (
                env.patient_id,
                payload.user_id,
                env.occurred_at,
                env.actor.user_id,
                payload.encounter_id,
            ),
        )
    elif payload.leaves_at is not None:
        cur.execute(
            "UPDATE care_team SET leaves_at = %s WHERE patient_id = %s AND user_id = %s",
            (payload.leaves_at, env.patient_id, payload.user_id),
        )
    else:
        cur.execute(
            "DELETE FROM care_team WHERE patient_id = %s AND user_id = %s",
            (env.patient_id, payload.user_id),
        )


def denied(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.AccessDenied) -> None:
    cur.execute(
        "INSERT INTO access_denials (event_id, user_id, role, method, route, status, kind, "
        "detail, patient_id, client, recorded_at, position) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            env.event_id,
            env.actor.user_id,
            env.actor.role,
            payload.method,
            payload.route,
            payload.status,
            payload.kind,
            payload.detail,
            payload.patient_id,
            payload.client,
            env.recorded_at,
            env.position,
        ),
    )


def audit_read(cur: Cursor[Any], env: PublishedEnvelope, payload: acc.AuditRead) -> None:
    cur.execute(
        "INSERT INTO audit_reads (event_id, user_id, role, what, patient_id, subject_user_id, "
        "rows, recorded_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (
            env.event_id,
            env.actor.user_id,
            env.actor.role,
            payload.what,
            payload.patient_id,
            payload.subject_user_id,
            payload.rows,
            env.recorded_at,
            env.position,
        ),
    )


# Who read an erased patient stays visible (HIPAA §164.312(b)): the row keeps what the clear
# envelope says (who, role, when, the patient's id, the event type) and nothing of the
# payload, so the row is the same whether it was written before the erasure and purged, or
# rebuilt afterwards from the erased envelope.
PSEUDONYMOUS = (
    "section = NULL, purpose = NULL, reason = NULL, expires_at = NULL, "
    "occurred_at = recorded_at, break_glass = (event_type = 'access.break_glass')"
)
ACCESS_TYPES = ("chart.viewed", "access.break_glass")


def purge(cur: Cursor[Any], patient_id: UUID) -> None:
    cur.execute(f"UPDATE access_audit SET {PSEUDONYMOUS} WHERE patient_id = %s", (patient_id,))  # noqa: S608
    cur.execute("DELETE FROM care_team WHERE patient_id = %s", (patient_id,))


def erased_access(cur: Cursor[Any], env: PublishedEnvelope) -> None:
    """An access of an erased patient, from its envelope alone (a rebuild after erasure)."""
    if env.event_type in ACCESS_TYPES:
        glass = env.event_type == "access.break_glass"
        _access(cur, env, None, None, glass, None, pseudonymous=True)


def team_members(
    conn: Connection[Any], patient_id: UUID
) -> list[tuple[UUID, datetime, UUID, UUID | None, datetime | None]]:
    """The patient's care team now: (user id, added at, added by, the encounter that
    brought them, when they leave), oldest first; those whose grace period ended are gone."""
    rows = conn.execute(
        "SELECT user_id, added_at, added_by, encounter_id, leaves_at FROM care_team "
        "WHERE patient_id = %s AND (leaves_at IS NULL OR leaves_at > now()) "
        "ORDER BY added_at, user_id",
        (patient_id,),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


PROJECTION = Projection(
    name="access_audit",
    topics=(PATIENTS.name, ACCESS.name),
    tables=("access_audit", "care_team", "access_denials", "audit_reads"),
    ddl=DDL,
    handlers={
        "chart.viewed": viewed,
        "access.break_glass": break_glass,
        "care_team.changed": care_team_changed,
        "access.denied": denied,
        "audit.read": audit_read,
    },
    purge=purge,
    on_erased=erased_access,
)
