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

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class IdempotencyClaim:
    """An idempotency key and the command's result, saved with its events."""

    key: str
    result: JsonDict


def _with_position(result: JsonDict, ids: Sequence[int] | None) -> JsonDict:
    return {**result, "position": max(ids) if ids else None}


class ClinicalPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder plus an idempotency table in the same transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.idempotency_table = f"{events_table_name}_idempotency"
        table = Identifier(self.datastore.schema, self.idempotency_table)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "key text PRIMARY KEY, result jsonb NOT NULL, position bigint, "
                "recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        self._insert_claim = SQL("INSERT INTO {} (key, result) VALUES (%s, %s)").format(table)
        self._set_position = SQL("UPDATE {} SET position = %s WHERE key = %s").format(table)
        self._select_claim = SQL("SELECT result, position FROM {} WHERE key = %s").format(table)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        if claim is not None:
            curs.execute(self._insert_claim, (claim.key, json.dumps(claim.result)))
        super()._insert_events(curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        if claim is not None and ids:
            curs.execute(self._set_position, (max(ids), claim.key))
        return ids

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
