"""Where each patient is, for a department's own filters: the ward of the open encounter.

Departments route by ward (the pharmacy verifies for a ward, an inbox is read per ward), so
each keeps a small table of its own, ``<department>_wards``, from the encounter events on
``clinical.patients``: a start or a transfer sets the ward, an end clears it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor, sql

from events.domain.payloads import encounters as enc
from events.store.published import PublishedEnvelope
from projections.engine.base import Handler


def ward_ddl(table: str) -> str:
    """The table of a department's patients' current wards."""
    return (
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (patient_id uuid PRIMARY KEY, "
            "encounter_id uuid NOT NULL, ward text NOT NULL, position bigint NOT NULL)"
        )
        .format(sql.Identifier(table))
        .as_string()
    )


def ward_handlers(table: str) -> dict[str, Handler]:
    """Handlers keeping ``table`` in step with the patients' encounters."""
    name = sql.Identifier(table)

    def located(cur: Cursor[Any], env: PublishedEnvelope, payload: Any) -> None:
        cur.execute(
            sql.SQL(
                "INSERT INTO {0} (patient_id, encounter_id, ward, position) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (patient_id) DO UPDATE SET "
                "encounter_id = EXCLUDED.encounter_id, ward = EXCLUDED.ward, "
                "position = EXCLUDED.position WHERE {0}.position < EXCLUDED.position"
            ).format(name),
            (env.patient_id, env.aggregate_id, payload.location.ward, env.position),
        )

    def ended(cur: Cursor[Any], env: PublishedEnvelope, payload: enc.EncounterEnded) -> None:
        del payload
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE patient_id = %s AND encounter_id = %s").format(name),
            (env.patient_id, env.aggregate_id),
        )

    return {
        "encounter.started": located,
        "encounter.transferred": located,
        "encounter.ended": ended,
    }


def purge_wards(cur: Cursor[Any], table: str, patient_id: UUID) -> None:
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE patient_id = %s").format(sql.Identifier(table)),
        (patient_id,),
    )
