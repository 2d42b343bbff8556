"""Event recorders that also claim idempotency keys in the same transaction as the events.

A command sent with an ``Idempotency-Key`` saves an ``IdempotencyClaim`` with its events.
The key is unique: a second attempt, even one racing the first or retried by the library
after a lost commit acknowledgement, fails with ``IntegrityError`` and the application
then returns the result recorded with the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from events.store.chain_table import ChainTable
from events.store.group_commit import GroupCommit
from events.store.insert_only import insert_only_statements
from events.store.mapper import split_state

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class IdempotencyClaim:
    """An idempotency key and the command's result, saved with its events."""

    key: str
    result: JsonDict


@dataclass(frozen=True)
class Insertion:
    """One command's events and its idempotency claim: what one ``insert_events`` call asks."""

    events: Sequence[StoredEvent]
    claim: IdempotencyClaim | None


@dataclass(frozen=True)
class _Slice:
    claim: IdempotencyClaim | None
    start: int
    stop: int


def patient_of(stored: StoredEvent) -> UUID | None:
    """The patient an encrypted stored event belongs to, from its clear header."""
    header = json.loads(split_state(stored.state)[0])
    return UUID(header["patient_id"]) if header.get("patient_id") else None


def _with_position(result: JsonDict, ids: Sequence[int] | None) -> JsonDict:
    return {**result, "position": max(ids) if ids else None}


class ClinicalPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder plus, in the same transaction, idempotency claims,
    the patient index and the hash chain; concurrent inserts are group-committed."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.group_commit: GroupCommit[Insertion, Sequence[int] | None] = GroupCommit(
            self._write_insertions
        )
        self.idempotency_table = f"{events_table_name}_idempotency"
        table = Identifier(self.datastore.schema, self.idempotency_table)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "key text PRIMARY KEY, result jsonb NOT NULL, position bigint, "
                "recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        index = Identifier(self.datastore.schema, f"{events_table_name}_by_patient")
        self._index_table = index
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (patient_id uuid NOT NULL, "
                "notification_id bigint NOT NULL, PRIMARY KEY (patient_id, notification_id))"
            ).format(index)
        )
        # Rows go in as arrays, one statement each: executemany in pipeline mode can leave
        # its results for a later fetch on the same cursor to trip over.
        self._index_event = SQL(
            "INSERT INTO {} (patient_id, notification_id) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[])"
        ).format(index)
        self._select_patient = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state "
            "FROM {} i JOIN {} e ON e.notification_id = i.notification_id "
            "WHERE i.patient_id = %s AND i.notification_id > %s "
            "ORDER BY i.notification_id LIMIT %s"
        ).format(index, Identifier(self.datastore.schema, events_table_name))
        self.chain_table = ChainTable(self.datastore.schema, events_table_name)
        self.sql_create_statements.extend(self.chain_table.create_statements)
        self._insert_claim = SQL(
            "INSERT INTO {} (key, result) SELECT * FROM unnest(%s::text[], %s::jsonb[])"
        ).format(table)
        self._set_position = SQL(
            "UPDATE {} AS c SET position = u.position "
            "FROM unnest(%s::text[], %s::bigint[]) AS u(key, position) WHERE c.key = u.key"
        ).format(table)
        self._select_claim = SQL("SELECT result, position FROM {} WHERE key = %s").format(table)
        # The permanent record refuses UPDATE, DELETE and TRUNCATE (the checkpoints table,
        # made by ChainVerifier, gets the same guard there).
        self.sql_create_statements.extend(
            insert_only_statements(
                self.datastore.schema,
                events_table_name,
                [
                    events_table_name,
                    f"{events_table_name}_by_patient",
                    f"{events_table_name}_chain",
                ],
            )
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert one command's events, sharing a transaction with concurrent commands."""
        return self.group_commit.submit(Insertion(stored_events, kwargs.get("idempotency")))

    def _write_insertions(
        self, insertions: Sequence[Insertion]
    ) -> list[Sequence[int] | BaseException | None]:
        """All insertions in one transaction; if one conflicts, each in its own, so that
        only the conflicting command fails."""
        try:
            return list(self._insert_together(insertions))
        except IntegrityError as exc:
            if len(insertions) == 1:
                return [exc]
        outcomes: list[Sequence[int] | BaseException | None] = []
        for insertion in insertions:
            try:
                outcomes.extend(self._insert_together([insertion]))
            except IntegrityError as exc:
                outcomes.append(exc)
        return outcomes

    def _insert_together(self, insertions: Sequence[Insertion]) -> list[Sequence[int] | None]:
        slices: list[_Slice] = []
        events: list[StoredEvent] = []
        for insertion in insertions:
            slices.append(_Slice(insertion.claim, len(events), len(events) + len(insertion.events)))
            events.extend(insertion.events)
        ids = super().insert_events(events, slices=slices)
        if ids is None:
            return [None] * len(insertions)
        return [ids[s.start : s.stop] for s in slices]

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        slices: Sequence[_Slice] = kwargs.get("slices", ())
        claims = [s.claim for s in slices if s.claim]
        if claims:
            keys, results = [c.key for c in claims], [json.dumps(c.result) for c in claims]
            curs.execute(self._insert_claim, (keys, results))
        super()._insert_events(curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if not ids:
            return ids
        slices: Sequence[_Slice] = kwargs.get("slices", ())
        claimed = [s for s in slices if s.claim is not None and s.stop > s.start]
        with curs.connection.cursor() as own:
            if claimed:
                own.execute(
                    self._set_position,
                    (
                        [s.claim.key for s in claimed if s.claim is not None],
                        [max(ids[s.start : s.stop]) for s in claimed],
                    ),
                )
            patients = map(patient_of, stored_events)
            indexed = [(p, n) for p, n in zip(patients, ids, strict=True) if p is not None]
            if indexed:
                own.execute(self._index_event, ([p for p, _ in indexed], [n for _, n in indexed]))
            self.chain_table.extend(own, stored_events, ids)
        return ids

    def backfill_patient_index(self) -> int:
        """Index events stored before the patient index existed; the rows added."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT max(notification_id) AS top FROM {}").format(self._index_table)
            )
            row = curs.fetchone()
            indexed = int(row["top"]) if row and row["top"] is not None else 0
        added, start = 0, indexed
        while batch := self.select_notifications(start=start, limit=1000, inclusive_of_start=False):
            rows = [(p, n.id) for n in batch if (p := patient_of(n)) is not None]
            if rows:
                with self.datastore.transaction(commit=True) as curs:
                    curs.execute(
                        self._index_event + SQL(" ON CONFLICT DO NOTHING"),
                        ([p for p, _ in rows], [n for _, n in rows]),
                    )
            added += len(rows)
            start = batch[-1].id
        return added

    def backfill_chain(self) -> int:
        """Chain a store created before chaining existed (the events chained); refused with
        ``ChainExists`` once any link exists. Only ``ChainVerifier.chain_existing`` calls it."""
        return self.chain_table.backfill(self.datastore)

    def unchained(self) -> bool:
        """Whether the store holds events but no chain link at all."""
        return self.chain_table.unchained(self.datastore)

    def chain_rows(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Events and chain links side by side (either may be missing), in position order."""
        return self.chain_table.rows(self.datastore, after, limit)

    def patient_notifications(
        self, patient_id: UUID, after: int = 0, limit: int | None = None
    ) -> list[Notification]:
        """The stored events of one patient after position ``after`` (up to ``limit`` of
        them, default all), in store order (from the patient index)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_patient, (patient_id, after, limit))
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def claimed_result(self, key: str) -> JsonDict | None:
        """The result recorded with an idempotency key, or None if the key is new."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_claim, (key,))
            row = curs.fetchone()
        if row is None:
            return None
        return {**row["result"], "position": row["position"]}


class ClinicalMemoryRecorder(POPOApplicationRecorder):
    """The library's in-memory recorder with the same idempotency behaviour, for unit tests."""

    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[str, JsonDict] = {}

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        with self._database_lock:
            if claim is not None and claim.key in self._claims:
                raise IntegrityError(f"idempotency key already used: {claim.key}")
            ids = super().insert_events(stored_events, **kwargs)
            if claim is not None:
                self._claims[claim.key] = _with_position(claim.result, ids)
            return ids

    def claimed_result(self, key: str) -> JsonDict | None:
        with self._database_lock:
            return self._claims.get(key)

    def patient_notifications(
        self, patient_id: UUID, after: int = 0, limit: int | None = None
    ) -> list[Notification]:
        notifications = self.select_notifications(start=None, limit=10**9)
        found = [n for n in notifications if n.id > after and patient_of(n) == patient_id]
        return found if limit is None else found[:limit]
