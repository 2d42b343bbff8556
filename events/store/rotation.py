"""Rotating the master key: every wrapped data key re-wrapped under a new one, no event touched.

Events are encrypted under the per-patient data keys, which stay what they are; only their
wrapping changes. The steps, each safe to interrupt:

1. the new key is written to ``master.key.new`` (0600, synced);
2. in one transaction, holding the data keys table against writers (readers go on), every
   wrapped key is opened and wrapped again under the new key;
3. the old key file is kept as ``master.key.retired-<UTC time>`` (a hard link, so the
   master key file never goes missing) and the new file atomically replaces it.

A rotation interrupted after its commit is finished by the next one: a pending ``.new`` key
that opens the data keys is the committed one. The retired key stays until an operator
deletes it (running processes open keys with it for a moment, see ``Keyring``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import Connection, sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from events.store.keys import (
    KEY_BYTES,
    NONCE_BYTES,
    key_fingerprint,
    load_master_key,
    write_key_file,
)

BATCH = 1000
Progress = Callable[[int], None]


class RotationRefused(RuntimeError):
    """The rotation would strand someone's keys; nothing was changed."""


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: keys re-wrapped, erased keys left alone, the two keys' names."""

    rewrapped: int
    erased: int
    new_fingerprint: str
    retired_fingerprint: str
    retired_file: Path


def _open(wrapper: AESGCM, key_id: UUID, wrapped: bytes) -> bytes | None:
    try:
        return wrapper.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.bytes)
    except InvalidTag:
        return None


def _wrap(wrapper: AESGCM, key_id: UUID, key: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + wrapper.encrypt(nonce, key, key_id.bytes)


def data_key_count(pool: ConnectionPool, table: str) -> int:
    """How many wrapped keys a rotation of this table re-wraps."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE wrapped_key IS NOT NULL")
    with pool.connection() as conn:
        row = conn.execute(query.format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _sample(conn: Connection[TupleRow], table: str) -> tuple[UUID, bytes] | None:
    query = sql.SQL("SELECT key_id, wrapped_key FROM {} WHERE wrapped_key IS NOT NULL LIMIT 1")
    row = conn.execute(query.format(sql.Identifier(table))).fetchone()
    return (UUID(str(row[0])), bytes(row[1])) if row else None


def _sharing_stores(pool: ConnectionPool, table: str, old: AESGCM) -> list[str]:
    """Other data key tables of this database whose keys the same master key wraps."""
    with pool.connection() as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE %s "
                "AND table_name <> %s AND table_schema = current_schema()",
                ("%\\_data\\_keys", table),
            ).fetchall()
        ]
        shared = []
        for other in tables:
            sample = _sample(conn, other)
            if sample is not None and _open(old, *sample) is not None:
                shared.append(other.removesuffix("_data_keys"))
    return shared


def _pending_key(pool: ConnectionPool, table: str, pending: Path) -> bytes | None:
    """The key of an interrupted rotation if it already wraps the data keys, else None."""
    if not pending.exists():
        return None
    key = load_master_key(pending)
    with pool.connection() as conn:
        sample = _sample(conn, table)
    if sample is not None and _open(AESGCM(key), *sample) is not None:
        return key
    pending.unlink()  # written, never committed: start again
    return None


def _rewrap(
    pool: ConnectionPool, table: str, old: AESGCM, new: AESGCM, progress: Progress | None
) -> tuple[int, int]:
    """Re-wrap every key in one transaction; (re-wrapped, erased)."""
    name = sql.Identifier(table)
    update = sql.SQL(
        "UPDATE {0} AS k SET wrapped_key = v.w FROM unnest(%s::uuid[], %s::bytea[]) AS v(id, w) "
        "WHERE k.key_id = v.id"
    ).format(name)
    with pool.connection() as conn, conn.transaction():
        # Writers (new keys, destructions) wait; readers of the old wrapping go on.
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(name))
        erased_row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE wrapped_key IS NULL").format(name)
        ).fetchone()
        rows = conn.execute(
            sql.SQL("SELECT key_id, wrapped_key FROM {} WHERE wrapped_key IS NOT NULL").format(name)
        ).fetchall()
        done = 0
        for start in range(0, len(rows), BATCH):
            ids, wrapped = [], []
            for key_id, blob in rows[start : start + BATCH]:
                key = _open(old, key_id, bytes(blob))
                if key is None:
                    if _open(new, key_id, bytes(blob)) is not None:
                        continue  # re-wrapped by the interrupted rotation this one finishes
                    raise RotationRefused(
                        f"data key {key_id} opens under neither the current master key nor "
                        "the new one; nothing was changed"
                    )
                ids.append(key_id)
                wrapped.append(_wrap(new, key_id, key))
            if ids:
                conn.execute(update, (ids, wrapped))
            done += len(rows[start : start + BATCH])
            if progress is not None:
                progress(len(rows[start : start + BATCH]))
    return done, int(erased_row[0]) if erased_row else 0


def _retire(master_file: Path, pending: Path, now: datetime) -> Path:
    """Keep the old key file under a retired name and put the new one in its place."""
    base = f"{master_file.name}.retired-{now:%Y%m%dT%H%M%SZ}"
    retired, suffix = master_file.with_name(base), 1
    while retired.exists():
        retired, suffix = master_file.with_name(f"{base}-{suffix}"), suffix + 1
    os.link(master_file, retired)
    os.replace(pending, master_file)
    directory = os.open(master_file.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return retired


def rotate_master_key(
    pool: ConnectionPool,
    table: str,
    master_file: Path,
    now: datetime,
    progress: Progress | None = None,
) -> Rotation:
    """Re-wrap every data key of ``table`` under a new master key and swap the key files."""
    old_key = load_master_key(master_file)
    old = AESGCM(old_key)
    shared = _sharing_stores(pool, table, old)
    if shared:
        raise RotationRefused(
            f"the master key {master_file} also wraps the data keys of store(s) "
            f"{', '.join(sorted(shared))}: give each store its own master key file first"
        )
    pending = master_file.with_name(master_file.name + ".new")
    new_key = _pending_key(pool, table, pending)
    if new_key is None:
        new_key = secrets.token_bytes(KEY_BYTES)
        write_key_file(pending, new_key)
    rewrapped, erased = _rewrap(pool, table, old, AESGCM(new_key), progress)
    retired = _retire(master_file, pending, now)
    return Rotation(rewrapped, erased, key_fingerprint(new_key), key_fingerprint(old_key), retired)
