"""A consistent copy of one store's tables: dumped in one snapshot, loaded into an empty store.

The store's tables are the ones named after it (``<name>_events`` and its chain,
checkpoints, idempotency claims and patient index, ``<name>_data_keys``, and whatever a
later version adds under the prefix): found by name, never listed by hand. The dump reads
them all in one REPEATABLE READ, READ ONLY transaction, so events, chain links, wrapped
keys and checkpoints are of one moment, each table as PostgreSQL's binary COPY, framed
into one byte stream. The read schema is not dumped: projections are rebuilt from the store.

Loading needs the target's tables made by the same version of the code (building the store
makes them) and empty. In one transaction, holding them against writers, it copies each
table in, moves their sequences past what came in, checks the row counts and that the
master key here opens the wrapped keys: all or nothing.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import Connection, sql
from psycopg.rows import TupleRow

from events.store.keys import NONCE_BYTES

Sink = Callable[[bytes], None]
Progress = Callable[[int], None]
_FRAME = struct.Struct(">cI")


class Source(Protocol):
    """Where a dump is read from."""

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or an error."""


class RestoreRefused(RuntimeError):
    """The target is not an empty store of this version, or the dump does not fit it."""


@dataclass
class DumpInfo:
    """What a dump holds: its store, head position, chain head and tables (columns, rows)."""

    store: str
    head: int = 0
    chain_head: str | None = None
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())


def store_tables(conn: Connection[TupleRow], name: str) -> list[str]:
    """The tables of store ``name`` in the current schema (not those of a store whose name
    merely starts with it, like ``<name>_x``)."""
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ).fetchall()
    ]
    prefix = f"{name}_"
    others = {
        t.removesuffix(end)
        for t in tables
        for end in ("_events", "_data_keys")
        if t.endswith(end) and t.removesuffix(end).startswith(prefix)
    }
    return sorted(
        t
        for t in tables
        if t.startswith(prefix) and not any(t.startswith(f"{o}_") or t == o for o in others)
    )


def _columns(conn: Connection[TupleRow], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s AND is_generated = 'NEVER' "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _count(conn: Connection[TupleRow], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _frame(sink: Sink, kind: bytes, body: bytes = b"") -> None:
    sink(_FRAME.pack(kind, len(body)) + body)


def dump_store(
    database_url: str, name: str, sink: Sink, progress: Progress | None = None
) -> DumpInfo:
    """Write every table of store ``name`` to ``sink``, from one snapshot; what was written."""
    info = DumpInfo(name)
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            tables = store_tables(conn, name)
            if f"{name}_events" not in tables:
                raise RestoreRefused(f"there is no store named {name!r} in this database")
            for table in tables:
                info.tables[table.removeprefix(f"{name}_")] = {
                    "columns": _columns(conn, table),
                    "rows": _count(conn, table),
                }
            head = conn.execute(
                sql.SQL("SELECT max(notification_id) FROM {}").format(
                    sql.Identifier(f"{name}_events")
                )
            ).fetchone()
            info.head = int(head[0]) if head and head[0] is not None else 0
            if f"{name}_events_chain" in tables:
                link = conn.execute(
                    sql.SQL(
                        "SELECT global_hash FROM {} ORDER BY notification_id DESC LIMIT 1"
                    ).format(sql.Identifier(f"{name}_events_chain"))
                ).fetchone()
                info.chain_head = bytes(link[0]).hex() if link else None
            for suffix, spec in info.tables.items():
                _frame(sink, b"T", json.dumps({"table": suffix}).encode())
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in spec["columns"])
                statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
                    sql.Identifier(f"{name}_{suffix}"), columns
                )
                with conn.cursor().copy(statement) as copy:
                    for block in copy:
                        _frame(sink, b"D", bytes(block))
                _frame(sink, b"E")
                if progress is not None:
                    progress(int(spec["rows"]))
    _frame(sink, b"Z")
    return info


def _read_frame(source: Source) -> tuple[bytes, bytes]:
    kind, size = _FRAME.unpack(source.read_exact(_FRAME.size))
    return kind, source.read_exact(size)


def _reset_sequences(conn: Connection[TupleRow], table: str) -> None:
    """Move each serial or identity column's sequence past the rows copied in."""
    for column in _columns(conn, table):
        row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column)).fetchone()
        if row is None or row[0] is None:
            continue
        conn.execute(
            sql.SQL("SELECT setval(%s, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)").format(
                sql.Identifier(column), sql.Identifier(table)
            ),
            (row[0],),
        )


def _check_master_key(conn: Connection[TupleRow], table: str, master_key: bytes) -> None:
    row = conn.execute(
        sql.SQL("SELECT key_id, wrapped_key FROM {} WHERE wrapped_key IS NOT NULL LIMIT 1").format(
            sql.Identifier(table)
        )
    ).fetchone()
    if row is None:
        return
    wrapped, key_id = bytes(row[1]), UUID(str(row[0]))
    try:
        AESGCM(master_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.bytes)
    except InvalidTag:
        raise RestoreRefused(
            "the master key here does not open the backup's data keys: restore the master "
            "key file the backed-up store used (nothing was loaded)"
        ) from None


def load_store(
    database_url: str,
    name: str,
    info: DumpInfo,
    source: Source,
    master_key: bytes,
    progress: Progress | None = None,
) -> None:
    """Copy a dump into the empty store ``name`` (its tables already made), all or nothing."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        present = store_tables(conn, name)
        missing = [s for s in info.tables if f"{name}_{s}" not in present]
        if missing:
            raise RestoreRefused(
                f"this version makes no table(s) {', '.join(missing)} for a store: restore "
                "with the version of the backbone that took the backup"
            )
        for table in present:
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(table)))
            if _count(conn, table):
                raise RestoreRefused(
                    f"the target store {name!r} is not empty ({table} has rows): restore "
                    "into an empty store (another --store name, or a fresh database)"
                )
        for suffix, table_info in info.tables.items():
            target = f"{name}_{suffix}"
            if set(_columns(conn, target)) != set(table_info["columns"]):
                raise RestoreRefused(f"{target} has other columns than the backup's {suffix}")
        while True:
            kind, body = _read_frame(source)
            if kind == b"Z":
                break
            if kind != b"T":
                raise RestoreRefused(f"malformed dump: expected a table, got {kind!r}")
            suffix = json.loads(body)["table"]
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in info.tables[suffix]["columns"])
            target = f"{name}_{suffix}"
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                sql.Identifier(target), columns
            )
            with conn.cursor().copy(statement) as copy:
                while (frame := _read_frame(source))[0] == b"D":
                    copy.write(frame[1])
            if frame[0] != b"E":
                raise RestoreRefused(f"malformed dump: {suffix} does not end")
            _reset_sequences(conn, target)
            if _count(conn, target) != int(info.tables[suffix]["rows"]):
                raise RestoreRefused(f"{target}: the row count differs from the manifest's")
            if progress is not None:
                progress(int(info.tables[suffix]["rows"]))
        _check_master_key(conn, f"{name}_data_keys", master_key)
