"""A projection's marks and erased patients for one transaction, read and written in bulk.

``apply_once`` asks, per envelope, for the mark of its (topic, key) and whether its patient
was erased, and records new marks. Asking the database each time costs three round trips
per message; ``Marks`` loads what a whole batch needs in two queries and writes what changed
in two statements when the batch commits. Whoever uses it holds the projection's lock (the
runner's advisory lock, or a rebuild's private shadow schema), so nobody else moves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from psycopg import Cursor

MarkKey = tuple[str, str]  # (topic, partition key)


class Marks:
    """The marks one projection has, plus the changes not yet written."""

    def __init__(self, projection: str, *, empty: bool = False) -> None:
        """``empty``: the projection has no marks at all yet (a fresh rebuild)."""
        self.projection = projection
        self._complete = empty
        self._marks: dict[MarkKey, int] = {}
        self._erased: set[UUID] = set()
        self._known_patients: set[UUID] = set()
        self._changed: dict[MarkKey, int] = {}
        self._newly_erased: set[UUID] = set()

    def load(self, cur: Cursor[Any], keys: Iterable[MarkKey], patients: Iterable[UUID]) -> None:
        """Read the marks and erasures of ``keys`` and ``patients`` (two queries)."""
        if self._complete:
            return
        wanted = [k for k in set(keys) if k not in self._marks]
        if wanted:
            rows = cur.execute(
                "SELECT m.topic, m.key, m.position FROM projection_marks m "
                "JOIN unnest(%s::text[], %s::text[]) AS w(topic, key) "
                "ON m.topic = w.topic AND m.key = w.key WHERE m.projection = %s",
                ([t for t, _ in wanted], [k for _, k in wanted], self.projection),
            ).fetchall()
            self._marks.update({(r[0], r[1]): int(r[2]) for r in rows})
        unknown = [p for p in set(patients) if p not in self._known_patients]
        if unknown:
            rows = cur.execute(
                "SELECT patient_id FROM projection_erased "
                "WHERE projection = %s AND patient_id = ANY(%s)",
                (self.projection, unknown),
            ).fetchall()
            self._erased.update(r[0] for r in rows)
            self._known_patients.update(unknown)

    def mark(self, topic: str, key: str) -> int | None:
        return self._marks.get((topic, key))

    def set(self, topic: str, key: str, position: int) -> None:
        if position > self._marks.get((topic, key), 0):
            self._marks[(topic, key)] = position
            self._changed[(topic, key)] = position

    def is_erased(self, patient_id: UUID) -> bool:
        return patient_id in self._erased

    def erase(self, patient_id: UUID) -> None:
        if patient_id not in self._erased:
            self._erased.add(patient_id)
            self._newly_erased.add(patient_id)

    def flush(self, cur: Cursor[Any]) -> None:
        """Write the changed marks and new erasures (two statements)."""
        if self._changed:
            keys = list(self._changed)
            cur.execute(
                "INSERT INTO projection_marks (projection, topic, key, position) "
                "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
                "ON CONFLICT (projection, topic, key) DO UPDATE SET position = "
                "GREATEST(projection_marks.position, EXCLUDED.position)",
                (
                    self.projection,
                    [t for t, _ in keys],
                    [k for _, k in keys],
                    [self._changed[k] for k in keys],
                ),
            )
            self._changed.clear()
        if self._newly_erased:
            cur.execute(
                "INSERT INTO projection_erased (projection, patient_id) "
                "SELECT %s, * FROM unnest(%s::uuid[]) ON CONFLICT DO NOTHING",
                (self.projection, list(self._newly_erased)),
            )
            self._newly_erased.clear()
