"""FHIR search over the read tables: parameters checked against the kind, then one query.

A kind's ``source`` is wrapped as ``SELECT * FROM (source) AS r WHERE … ORDER BY r.id``
and paged by id (keyset: ``_cursor`` in the ``next`` link is the last id of the page), so a
page costs the same wherever it is. Patient references (``patient``, ``subject``) are not
turned into SQL here: the caller checks access to each patient first and passes the ids
(with their merged records) the rows may belong to. Anything not understood is a 400 that
names it; nothing is ignored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import dict_row

from services.fhir.criteria import BUILDERS, Condition, reference_ids
from services.fhir.kinds import LAST_UPDATED, Kind, Param
from services.fhir.outcomes import FhirError

DEFAULT_COUNT = 50
MAX_COUNT = 500
# Every kind takes these besides its own parameters.
COMMON: Mapping[str, Param] = {
    "_id": Param("token", ("id",), "the resource id"),
    "_lastUpdated": LAST_UPDATED,
}
PAGING = frozenset({"_count", "_cursor"})
FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
NOT_SUPPORTED = frozenset(
    {"_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_contained"}
)


@dataclass(frozen=True)
class SearchRequest:
    """A checked search: its conditions, the patients it names, and its page."""

    kind: Kind
    conditions: tuple[Condition, ...]
    patients: frozenset[UUID] | None  # named by patient/subject (None: not named)
    count: int
    cursor: UUID | None
    query: tuple[tuple[str, str], ...]  # as given, without _cursor: for the next link


def params_of(kind: Kind) -> dict[str, Param]:
    """Every search parameter ``kind`` takes, its own and the common ones."""
    return {**kind.params, **COMMON}


def _count(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        raise FhirError(400, f"_count must be 1 to {MAX_COUNT}", expression=["_count"])
    return int(raw)


def _cursor(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise FhirError(
            400, "_cursor is not one this server gave", expression=["_cursor"]
        ) from None


def parse(kind: Kind, items: Iterable[tuple[str, str]]) -> SearchRequest:
    """Check ``items`` (the query string, repeats kept) against what ``kind`` supports."""
    known = params_of(kind)
    conditions: list[Condition] = []
    patients: frozenset[UUID] | None = None
    count, cursor, kept = DEFAULT_COUNT, None, []
    for name, raw in items:
        if name == "_count":
            count = _count(raw)
        elif name == "_cursor":
            cursor = _cursor(raw)
            continue
        elif name == "_format":
            if raw not in FORMATS:
                raise FhirError(400, f"_format {raw} is not served", code="not-supported")
        elif name in NOT_SUPPORTED:
            raise FhirError(400, f"parameter {name} is not supported", code="not-supported")
        elif ":" in name:
            raise FhirError(400, f"modifier {name} is not supported", code="not-supported")
        elif name not in known:
            raise FhirError(
                400,
                f"unknown parameter {name} for {kind.name}; known: {', '.join(sorted(known))}",
                code="not-supported",
                expression=[name],
            )
        elif known[name].scopes_patients:
            ids = frozenset(reference_ids(name, raw))
            patients = ids if patients is None else patients & ids
        else:
            param = known[name]
            conditions.append(BUILDERS[param.type](name, param, raw))
        kept.append((name, raw))
    return SearchRequest(kind, tuple(conditions), patients, count, cursor, tuple(kept))


def _query(
    kind: Kind,
    conditions: Sequence[Condition],
    patients: Sequence[UUID] | None,
    after: UUID | None,
    limit: int,
) -> tuple[sql.Composed, tuple[Any, ...]]:
    where = list(conditions)
    if patients is not None:
        where.append(Condition(sql.SQL("r.patient_id = ANY(%s)"), (list(patients),)))
    if after is not None:
        where.append(Condition(sql.SQL("r.id > %s"), (after,)))
    clause = sql.SQL(" AND ").join(c.sql for c in where) if where else sql.SQL("true")
    query = sql.SQL("SELECT * FROM ({}) AS r WHERE {} ORDER BY r.id LIMIT %s").format(
        sql.SQL(kind.source),  # the kinds' SQL is code, not input
        clause,
    )
    return query, (*(v for c in where for v in c.values), limit)


def fetch(
    conn: Connection[Any],
    kind: Kind,
    conditions: Sequence[Condition] = (),
    patients: Sequence[UUID] | None = None,
    after: UUID | None = None,
    limit: int = DEFAULT_COUNT,
) -> list[dict[str, Any]]:
    """Up to ``limit`` resources of ``kind`` after id ``after``, in id order."""
    query, values = _query(kind, conditions, patients, after, limit)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")  # days in date searches are UTC days
        rows = cur.execute(query, values).fetchall()
    return [kind.to_resource(row) for row in rows]


def run(
    conn: Connection[Any], request: SearchRequest, patients: Sequence[UUID] | None
) -> tuple[list[dict[str, Any]], UUID | None]:
    """One page of ``request`` over rows of ``patients`` (None: any), and the next cursor."""
    found = fetch(
        conn, request.kind, request.conditions, patients, request.cursor, request.count + 1
    )
    if len(found) > request.count:
        found = found[: request.count]
        return found, UUID(found[-1]["id"])
    return found, None


def scan(
    conn: Connection[Any],
    kind: Kind,
    *,
    since: datetime | None = None,
    patients: Sequence[UUID] | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every resource of ``kind`` (changed after ``since``), in id order, ``batch`` a query."""
    conditions = []
    if since is not None:
        conditions.append(Condition(sql.SQL("r.last_updated > %s"), (since,)))
    after: UUID | None = None
    while True:
        page = fetch(conn, kind, conditions, patients, after, batch)
        yield from page
        if len(page) < batch:
            return
        after = UUID(page[-1]["id"])


def owner(conn: Connection[Any], kind: Kind, resource_id: UUID) -> UUID | None:
    """Whose record the resource ``kind/resource_id`` belongs to (None: not known)."""
    query = sql.SQL("SELECT r.patient_id FROM ({}) AS r WHERE r.id = %s").format(
        sql.SQL(kind.source)
    )
    row = conn.execute(query, (resource_id,)).fetchone()
    return None if row is None else UUID(str(row[0]))


def since_of(raw: str | None, name: str = "_since") -> datetime | None:
    """A ``_since`` instant (with its zone), or None when not given."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, f"{name} must be a FHIR instant", expression=[name]) from None
    if moment.tzinfo is None:
        raise FhirError(400, f"{name} must carry a time zone", expression=[name])
    return moment
