"""The hash chain's table: one link per stored event, written beside the events.

``ChainTable`` holds the SQL for the ``<events>_chain`` table and its stream index, extends
the chain inside an insert transaction, chains (on explicit request only) a store created
before chaining existed and reads events and links side by side for verification. The hash
functions themselves live in ``events.store.chain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from events.store import chain


class ChainExists(Exception):
    """The store already has chain links: chaining it again would hide what was removed."""


class ChainTable:
    """The chain table of one events table: its create statements and the queries on it.

    Built from the datastore schema and the events table name; methods take the cursor of
    the caller's transaction or the datastore to open their own.
    """

    def __init__(self, schema: str, events_table_name: str) -> None:
        self.events_table = Identifier(schema, events_table_name)
        table = Identifier(schema, f"{events_table_name}_chain")
        self.table = table
        self.create_statements: list[Composed] = [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (notification_id bigint PRIMARY KEY, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "stream_hash bytea NOT NULL, global_hash bytea NOT NULL)"
            ).format(table),
            # Each insert looks up the previous link of its streams: without this index that
            # lookup scans the whole chain, and appends slow down as the store grows.
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (originator_id, originator_version)"
            ).format(Identifier(f"{events_table_name}_chain_stream"), table),
        ]
        self._chain_head = SQL(
            "SELECT global_hash FROM {} ORDER BY notification_id DESC LIMIT 1"
        ).format(table)
        self._chain_previous = SQL(
            "SELECT originator_id, originator_version, stream_hash FROM {} "
            "WHERE (originator_id, originator_version) IN "
            "(SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
        ).format(table)
        self._chain_insert = SQL(
            "INSERT INTO {} (notification_id, originator_id, originator_version, stream_hash, "
            "global_hash) SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::bigint[], "
            "%s::bytea[], %s::bytea[])"
        ).format(table)

    def extend(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], ids: Sequence[int]
    ) -> None:
        """Chain the new events (we hold the table lock, so the head cannot move)."""
        curs.execute(self._chain_head)
        head = curs.fetchone()
        previous_global = bytes(head["global_hash"]) if head else chain.GENESIS
        wanted = [(e.originator_id, e.originator_version - 1) for e in stored_events]
        curs.execute(self._chain_previous, ([w[0] for w in wanted], [w[1] for w in wanted]))
        streams = {
            (row["originator_id"], row["originator_version"]): bytes(row["stream_hash"])
            for row in curs.fetchall()
        }
        rows = []
        for event, position in sorted(zip(stored_events, ids, strict=True), key=lambda p: p[1]):
            originator_id = UUID(str(event.originator_id))
            previous = streams.get((originator_id, event.originator_version - 1), chain.GENESIS)
            link = chain.stream_hash(
                previous, originator_id, event.originator_version, event.topic, event.state
            )
            streams[(originator_id, event.originator_version)] = link
            previous_global = chain.global_hash(previous_global, position, link)
            rows.append((position, originator_id, event.originator_version, link, previous_global))
        curs.execute(self._chain_insert, tuple(list(column) for column in zip(*rows, strict=True)))

    def backfill(self, datastore: PostgresDatastore) -> int:
        """Chain a store created before chaining existed, under the events table's lock;
        refused (``ChainExists``) when any link exists, so that rows written around the
        store later are reported, never silently linked. Never run at start-up: only by the
        explicit, witnessed ``backbone verify --chain-existing``."""
        events = self.events_table
        with datastore.transaction(commit=True) as curs:
            curs.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events))
            curs.execute(SQL("SELECT EXISTS (SELECT 1 FROM {}) AS linked").format(self.table))
            row = curs.fetchone()
            if row is None or row["linked"]:
                raise ChainExists("the store is already chained: its links are never rebuilt")
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version, topic, state "
                    "FROM {} ORDER BY notification_id"
                ).format(events)
            )
            stored = curs.fetchall()
            if not stored:
                return 0
            self.extend(
                curs,
                [
                    StoredEvent(
                        r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                    )
                    for r in stored
                ],
                [r["notification_id"] for r in stored],
            )
            return len(stored)

    def unchained(self, datastore: PostgresDatastore) -> bool:
        """Whether the store holds events but not a single chain link."""
        query = SQL(
            "SELECT EXISTS (SELECT 1 FROM {}) AND NOT EXISTS (SELECT 1 FROM {}) AS unchained"
        ).format(self.events_table, self.table)
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query)
            row = curs.fetchone()
        return bool(row and row["unchained"])

    def rows(self, datastore: PostgresDatastore, after: int, limit: int) -> list[dict[str, Any]]:
        """Events and chain links side by side (either may be missing), in position order."""
        query = SQL(
            "SELECT coalesce(e.notification_id, c.notification_id) AS position, "
            "e.originator_id, e.originator_version, e.topic, e.state, "
            "c.originator_id AS chained_id, c.originator_version AS chained_version, "
            "c.stream_hash, c.global_hash FROM {} e FULL JOIN {} c "
            "ON c.notification_id = e.notification_id "
            "WHERE coalesce(e.notification_id, c.notification_id) > %s "
            "ORDER BY 1 LIMIT %s"
        ).format(self.events_table, self.table)
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (after, limit))
            return list(curs.fetchall())
