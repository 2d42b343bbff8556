"""Retention: which patients' data may be erased because every area's period has run out.

A patient expires when, for every area (topic) they have events in, the last event there
is older than that area's retention period. A legal hold blocks erasure. Applying the
policy erases through the same path as any erasure (``patient.erased``, key destroyed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.commands.patients import ErasePatient
from events.domain.contract import spec_of
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.store.migrating import create_if_allowed

# One table per store (``<store>_legal_holds``), so holds travel with the store's backup and
# never apply to another store in the same database; holds of the former shared table are
# carried over once.
HOLDS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    patient_id uuid PRIMARY KEY,
    reason text NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now(),
    placed_by uuid
);
DO $$ BEGIN
    IF to_regclass('legal_holds') IS NOT NULL THEN
        INSERT INTO {table} (patient_id, reason, placed_at)
        SELECT patient_id, reason, placed_at FROM legal_holds ON CONFLICT DO NOTHING;
    END IF;
END $$"""


@dataclass(frozen=True)
class Expired:
    """A patient whose retention has run out."""

    patient_id: UUID
    last_event_at: datetime
    expired_at: datetime
    on_hold: bool


def _area(event_type: str) -> str:
    return spec_of(event_type).topic.name.removeprefix("clinical.")


class RetentionPolicy:
    """Retention periods per area, legal holds, and the erasure of expired patients."""

    def __init__(self, store: ClinicalStore, pool: ConnectionPool, years: dict[str, float]) -> None:
        self.store = store
        self.pool = pool
        self.years = years
        self._table = sql.Identifier(f"{store.name}_legal_holds")
        with self.pool.connection() as conn:
            create_if_allowed(conn, sql.SQL(HOLDS_DDL).format(table=self._table))

    def hold(self, patient_id: UUID, reason: str, operator: Actor = SYSTEM_ACTOR) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (patient_id, reason, placed_by) VALUES (%s, %s, %s) "
                    "ON CONFLICT (patient_id) DO UPDATE SET reason = EXCLUDED.reason, "
                    "placed_by = EXCLUDED.placed_by, placed_at = now()"
                ).format(self._table),
                (patient_id, reason, operator.user_id),
            )

    def release(self, patient_id: UUID) -> bool:
        with self.pool.connection() as conn:
            return (
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE patient_id = %s").format(self._table),
                    (patient_id,),
                ).rowcount
                > 0
            )

    def _holds(self) -> set[UUID]:
        with self.pool.connection() as conn:
            rows = conn.execute(sql.SQL("SELECT patient_id FROM {}").format(self._table))
            return {row[0] for row in rows.fetchall()}

    def expired(self, now: datetime, advance: Callable[[int], None] | None = None) -> list[Expired]:
        """Every patient (not already erased) whose retention ran out, oldest activity first."""
        last: dict[UUID, dict[str, datetime]] = defaultdict(dict)
        erased: set[UUID] = set()
        for batch in self.store.event_log.headers(page_size=2000):
            for header in batch:
                if header.patient_id is None:
                    continue
                if header.event_type == "patient.erased":
                    erased.add(header.patient_id)
                area = _area(header.event_type)
                seen = last[header.patient_id].get(area)
                if seen is None or header.recorded_at > seen:
                    last[header.patient_id][area] = header.recorded_at
            if advance is not None:
                advance(len(batch))
        holds = self._holds()
        found = []
        for patient_id, areas in last.items():
            if patient_id in erased:
                continue
            until = max(
                at + timedelta(days=365.25 * self.years.get(area, max(self.years.values())))
                for area, at in areas.items()
            )
            if until <= now:
                found.append(Expired(patient_id, max(areas.values()), until, patient_id in holds))
        return sorted(found, key=lambda e: e.last_event_at)

    def apply(self, expired: list[Expired], operator: Actor = SYSTEM_ACTOR) -> list[UUID]:
        """Erase every expired patient without a legal hold; the ids erased. The operator
        who ran it is the erasures' actor (the policy, not a second person, approves)."""
        erased = []
        for entry in expired:
            if entry.on_hold:
                continue
            ctx = CommandContext(actor=operator, reason="retention period ended")
            self.store.forget(ctx, ErasePatient(entry.patient_id, "retention policy"))
            erased.append(entry.patient_id)
        return erased
