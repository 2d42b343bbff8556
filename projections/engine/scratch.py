"""Replaying stored events into scratch tables that are thrown away.

The projections' own DDL and handlers build their tables as temporary tables (the
session's ``pg_temp`` schema, which every role may use: the API's role may not create
schemas) inside a transaction that is always rolled back, so what is read from them is
exactly what the live tables held (or would have held) after those events, and nothing of
them stays. Past charts (``as_of``) and FHIR resource history use it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from psycopg import Connection

from events.store.log import LoggedEvent
from projections.engine.applying import Decoded, apply_once, from_log
from projections.engine.base import Projection
from projections.engine.marks import Marks
from projections.engine.state import STATE_DDL

Wanted = Callable[[Decoded], bool]
AfterEach = Callable[[LoggedEvent, Decoded], None]


class _RolledBack(Exception):
    """Raised to roll back the scratch tables; never escapes."""


def replay(
    conn: Connection[Any],
    projections: Sequence[Projection],
    events: Iterable[LoggedEvent],
    wanted: Wanted | None = None,
    after_each: AfterEach | None = None,
    at_end: Callable[[], None] | None = None,
) -> None:
    """Apply each ``wanted`` event of ``events`` (store order) to ``projections`` in a
    scratch tables; ``after_each`` runs after each applied event and ``at_end`` after the
    last, with the scratch tables first on the search path. Then everything is rolled back."""
    try:
        with conn.transaction():
            # Only the temporary schema: nothing live can be read or written by mistake.
            conn.execute("SET LOCAL search_path TO pg_temp")
            conn.execute(STATE_DDL)
            for projection in projections:
                conn.execute(projection.ddl)
            cur = conn.cursor()
            marks = {p.name: Marks(p.name, empty=True) for p in projections}
            for logged in events:
                event = from_log(logged)
                if wanted is not None and not wanted(event):
                    continue
                for projection in projections:
                    if event.topic in projection.topics:
                        apply_once(
                            cur,
                            projection,
                            marks[projection.name],
                            event.topic,
                            event.envelope,
                            event.payload,
                        )
                if after_each is not None:
                    after_each(logged, event)
            for projection_marks in marks.values():
                projection_marks.flush(cur)
            if at_end is not None:
                at_end()
            raise _RolledBack
    except _RolledBack:
        pass
