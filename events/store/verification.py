"""Verifying the hash chains and the signed checkpoints of the store.

A row altered, deleted, inserted out of band or moved breaks the recomputed chain at its
position. An attacker who rewrites the whole tail (recomputing every link) is caught by
the Ed25519-signed checkpoints: the recomputed global hash at a checkpoint's position must
equal the signed one.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg_pool import ConnectionPool

from events.store import chain
from events.store.recorders import ClinicalPostgresRecorder

CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    position bigint PRIMARY KEY,
    global_hash bytea NOT NULL,
    signature bytea NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Verdict:
    """OK, or the first broken position and why."""

    checked: int
    head: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key, created (0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(raw).decode() + "\n")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))


def _message(position: int, global_hash: bytes) -> bytes:
    return b"clinical-backbone checkpoint" + struct.pack(">q", position) + global_hash


class ChainVerifier:
    """Recomputes the chains of one store and checks its signed checkpoints."""

    def __init__(
        self, recorder: ClinicalPostgresRecorder, pool: ConnectionPool, key: Ed25519PrivateKey
    ) -> None:
        self.recorder = recorder
        self.pool = pool
        self.key = key
        self.table = f"{recorder.events_table_name}_checkpoints"
        with self.pool.connection() as conn:
            conn.execute(CHECKPOINTS_DDL.format(table=self.table))

    def _checkpoints(self) -> dict[int, tuple[bytes, bytes]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT position, global_hash, signature FROM {self.table}"  # noqa: S608
            ).fetchall()
        return {int(r[0]): (bytes(r[1]), bytes(r[2])) for r in rows}

    def verify(self, advance: Callable[[int], None] | None = None) -> Verdict:
        checkpoints = self._checkpoints()
        public = self.key.public_key()
        for position, (digest, signature) in checkpoints.items():
            try:
                public.verify(signature, _message(position, digest))
            except InvalidSignature:
                return Verdict(0, 0, position, "checkpoint signature invalid")
        streams: dict[UUID, tuple[int, bytes]] = {}
        previous_global = chain.GENESIS
        checked, after = 0, 0
        while rows := self.recorder.chain_rows(after, 5000):
            for row in rows:
                problem = self._check(row, streams, previous_global)
                position = int(row["position"])
                if problem is not None:
                    return Verdict(checked, position, position, problem)
                previous_global = bytes(row["global_hash"])
                expected = checkpoints.get(position)
                if expected is not None and expected[0] != previous_global:
                    return Verdict(
                        checked, position, position, "history rewritten after a signed checkpoint"
                    )
                checked += 1
            after = int(rows[-1]["position"])
            if advance is not None:
                advance(len(rows))
        missing = [p for p in checkpoints if p > after]
        if missing:
            return Verdict(
                checked, after, min(missing), "events after a signed checkpoint are gone"
            )
        return Verdict(checked, after)

    @staticmethod
    def _check(
        row: dict[str, Any], streams: dict[UUID, tuple[int, bytes]], previous_global: bytes
    ) -> str | None:
        if row["originator_id"] is None:
            return "event deleted (its chain link remains)"
        if row["stream_hash"] is None:
            return "event without a chain link (written around the store)"
        originator_id, version = UUID(str(row["originator_id"])), int(row["originator_version"])
        if (UUID(str(row["chained_id"])), int(row["chained_version"])) != (originator_id, version):
            return "event moved to another position"
        last = streams.get(originator_id)
        if version == 1:
            previous = chain.GENESIS
        elif last is not None and last[0] == version - 1:
            previous = last[1]
        else:
            return "stream out of order (an earlier event is missing or moved)"
        link = chain.stream_hash(
            previous, originator_id, version, row["topic"], bytes(row["state"])
        )
        if link != bytes(row["stream_hash"]):
            return "event altered (stream hash mismatch)"
        if chain.global_hash(previous_global, int(row["position"]), link) != bytes(
            row["global_hash"]
        ):
            return "log altered (global hash mismatch)"
        streams[originator_id] = (version, link)
        return None

    def checkpoint(self, verdict: Verdict) -> int | None:
        """Sign the head reached by a successful verification; the position signed."""
        if not verdict.ok or verdict.head == 0:
            return None
        return self.sign_head(verdict.head)

    def sign_head(self, head: int | None = None) -> int | None:
        """Sign the chain's global hash at ``head`` (default: the newest link)."""
        with self.pool.connection() as conn:
            chain_table = f"{self.recorder.events_table_name}_chain"
            row = conn.execute(
                f"SELECT notification_id, global_hash FROM {chain_table} "  # noqa: S608
                "WHERE %s::bigint IS NULL OR notification_id = %s "
                "ORDER BY notification_id DESC LIMIT 1",
                (head, head),
            ).fetchone()
            if row is None:
                return None
            position, digest = int(row[0]), bytes(row[1])
            conn.execute(
                f"INSERT INTO {self.table} (position, global_hash, signature) "  # noqa: S608
                "VALUES (%s, %s, %s) ON CONFLICT (position) DO NOTHING",
                (position, digest, self.key.sign(_message(position, digest))),
            )
        return position
