"""Verifying the hash chains and the signed checkpoints of the store.

A row altered, deleted, inserted out of band or moved breaks the recomputed chain at its
position. An attacker who rewrites the whole tail (recomputing every link) is caught by
the Ed25519-signed checkpoints: the recomputed global hash at a checkpoint's position must
equal the signed one. Checkpoints in the database can be truncated along with the chain by
whoever administers it, so each is also appended to the witness outside the database
(``events.store.witness``): the database's history must reach the newest witnessed position
with the witnessed number of links and the witnessed hash there, or the store is BROKEN.

The signing key is a file (mode 0600, refused if others can read it), never a database row;
only the relay and ``backbone verify`` load it (``services.bootstrap.Backbone.verifier``).
"""

from __future__ import annotations

import base64
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.store import chain
from events.store.chain_table import ChainExists
from events.store.insert_only import protect_statement
from events.store.migrating import create_if_allowed
from events.store.recorders import ClinicalPostgresRecorder
from events.store.witness import Witness, WitnessLine, WitnessUnreadable

log = logging.getLogger(__name__)

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


class ChainRefused(Exception):
    """Chaining an existing store was refused: it was chained (or witnessed) before."""


class SigningKeyExposed(PermissionError):
    """The checkpoint signing key file can be read by others than its owner."""


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key, created (0600) on first use; refused if its file is
    readable or writable by group or others."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(raw).decode() + "\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningKeyExposed(
            f"the checkpoint signing key {path} has mode {mode:o}: chmod 600 it "
            "(only the relay's and verify's user may read it)"
        )
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))


def _message(position: int, global_hash: bytes) -> bytes:
    return b"clinical-backbone checkpoint" + struct.pack(">q", position) + global_hash


class ChainVerifier:
    """Recomputes the chains of one store and checks its signed checkpoints, in the
    database and in the witness outside it."""

    def __init__(
        self,
        recorder: ClinicalPostgresRecorder,
        pool: ConnectionPool,
        key: Ed25519PrivateKey,
        witness: Witness | None = None,
    ) -> None:
        self.recorder = recorder
        self.pool = pool
        self.key = key
        self.witness = witness
        self.table = f"{recorder.events_table_name}_checkpoints"
        schema = recorder.datastore.schema
        with self.pool.connection() as conn:
            create_if_allowed(
                conn,
                CHECKPOINTS_DDL.format(table=self.table),
                protect_statement(schema, recorder.events_table_name, self.table),
            )
        events = sql.Identifier(recorder.events_table_name)
        links = sql.Identifier(f"{recorder.events_table_name}_chain")
        self._at = sql.SQL(
            "SELECT (SELECT count(*) FROM {events} WHERE notification_id <= %(p)s) AS events, "
            "(SELECT count(*) FROM {links} WHERE notification_id <= %(p)s) AS links, "
            "(SELECT global_hash FROM {links} WHERE notification_id = %(p)s) AS digest, "
            "(SELECT max(notification_id) FROM {events}) AS head"
        ).format(events=events, links=links)

    def _checkpoints(self) -> dict[int, tuple[bytes, bytes]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT position, global_hash, signature FROM {self.table}"  # noqa: S608
            ).fetchall()
        return {int(r[0]): (bytes(r[1]), bytes(r[2])) for r in rows}

    def _witnessed(self) -> list[WitnessLine]:
        return [] if self.witness is None else self.witness.lines(self.key.public_key())

    def against_witness(self, line: WitnessLine) -> str | None:
        """What the database lacks or changed compared with a witnessed checkpoint (it
        compares the stored chain: the recomputation is ``verify``'s)."""
        with self.pool.connection() as conn:
            row = conn.execute(self._at, {"p": line.position}).fetchone()
        events, links = (int(row[0]), int(row[1])) if row else (0, 0)
        digest = bytes(row[2]) if row and row[2] is not None else None
        head = int(row[3]) if row and row[3] is not None else 0
        signed = f"the witness signed {line.count} events up to position {line.position} "
        signed += f"at {line.signed_at.isoformat()}"
        problems = []
        if head < line.position:
            problems.append(f"history shorter than witnessed: it ends at position {head}")
        if events != line.count:
            change = "missing" if events < line.count else "added"
            problems.append(f"{abs(line.count - events)} witnessed events {change}")
        if links == 0:
            problems.append("the chain table is empty")
        elif links != line.count:
            change = "missing" if links < line.count else "added"
            problems.append(f"{abs(line.count - links)} chain links {change}")
        if links and digest is None:
            problems.append("no chain link at the witnessed position")
        elif digest is not None and digest != line.head_hash:
            problems.append("history differs from the witness at its position")
        return f"{'; '.join(problems)} ({signed})" if problems else None

    def verify(self, advance: Callable[[int], None] | None = None) -> Verdict:
        checkpoints = self._checkpoints()
        public = self.key.public_key()
        for position, (digest, signature) in checkpoints.items():
            try:
                public.verify(signature, _message(position, digest))
            except InvalidSignature:
                return Verdict(0, 0, position, "checkpoint signature invalid")
        try:
            witnessed = self._witnessed()
        except WitnessUnreadable as exc:
            return Verdict(0, 0, 0, str(exc))
        if witnessed:
            newest = max(witnessed, key=lambda line: line.position)
            problem = self.against_witness(newest)
            if problem is not None:
                return Verdict(0, 0, newest.position, problem)
        expected = {p: digest for p, (digest, _) in checkpoints.items()}
        sources = dict.fromkeys(expected, "a signed checkpoint")
        for line in witnessed:
            expected[line.position], sources[line.position] = line.head_hash, "the witness"
        return self._walk(expected, sources, advance)

    def _walk(
        self,
        expected: dict[int, bytes],
        sources: dict[int, str],
        advance: Callable[[int], None] | None,
    ) -> Verdict:
        streams: dict[UUID, tuple[int, bytes]] = {}
        previous_global = chain.GENESIS
        pending = sorted(expected)
        checked, after = 0, 0
        while rows := self.recorder.chain_rows(after, 5000):
            for row in rows:
                problem = self._check(row, streams, previous_global)
                position = int(row["position"])
                if problem is None and pending and pending[0] < position:
                    problem = f"position {pending[0]}, signed by {sources[pending[0]]}, is gone"
                if problem is not None:
                    return Verdict(checked, position, position, problem)
                previous_global = bytes(row["global_hash"])
                if pending and pending[0] == position:
                    pending.pop(0)
                    if expected[position] != previous_global:
                        return Verdict(
                            checked,
                            position,
                            position,
                            f"history rewritten after {sources[position]}",
                        )
                checked += 1
            after = int(rows[-1]["position"])
            if advance is not None:
                advance(len(rows))
        if pending:
            return Verdict(
                checked, after, pending[0], f"events after {sources[pending[0]]} are gone"
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

    def sign_head(self, head: int | None = None, action: str = "checkpoint") -> int | None:
        """Sign the chain's global hash at ``head`` (default: the newest link), in the
        database and in the witness. Refused (None, logged) when the stored chain no longer
        agrees with the newest witnessed checkpoint: signing it would bless the rewrite."""
        chain_table = f"{self.recorder.events_table_name}_chain"
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT notification_id, global_hash FROM {chain_table} "  # noqa: S608
                "WHERE %s::bigint IS NULL OR notification_id = %s "
                "ORDER BY notification_id DESC LIMIT 1",
                (head, head),
            ).fetchone()
            if row is None:
                return None
            position, digest = int(row[0]), bytes(row[1])
            counted = conn.execute(
                f"SELECT count(*) FROM {chain_table} WHERE notification_id <= %s",  # noqa: S608
                (position,),
            ).fetchone()
        try:
            newest = self.witness.last(self.key.public_key()) if self.witness else None
        except WitnessUnreadable as exc:
            log.error("witness unreadable; not signing", extra={"fields": {"problem": str(exc)}})
            return None
        if newest is not None:
            problem = self.against_witness(newest)
            if problem is not None:
                log.error(
                    "chain disagrees with the witness; not signing",
                    extra={
                        "fields": {"store": self.recorder.events_table_name, "problem": problem}
                    },
                )
                return None
        with self.pool.connection() as conn:
            conn.execute(
                f"INSERT INTO {self.table} (position, global_hash, signature) "  # noqa: S608
                "VALUES (%s, %s, %s) ON CONFLICT (position) DO NOTHING",
                (position, digest, self.key.sign(_message(position, digest))),
            )
        fresh = newest is None or position > newest.position or action != "checkpoint"
        if self.witness is not None and fresh:
            line = WitnessLine(
                store=self.witness.store,
                position=position,
                head_hash=digest,
                count=int(counted[0]) if counted else 0,
                signed_at=datetime.now(tz=UTC),
                action=action,
            )
            self.witness.append(line.signed(self.key))
        return position

    def chain_existing(self, operator: str) -> tuple[int, int | None]:
        """Chain a store that was never chained, and witness it at once: (events chained,
        position signed). Refused when a link, a signed checkpoint or a witness exists:
        an empty chain then means its links were removed, and rebuilding them would hide
        what else went with them."""
        if self.witness is None:
            raise ChainRefused("no witness is configured: chaining must be witnessed")
        if self.witness.exists():
            raise ChainRefused(
                f"a witness exists for this store ({self.witness.path}): it was chained "
                "before, so an empty chain means its links were removed"
            )
        if self._checkpoints():
            raise ChainRefused("signed checkpoints exist: the store was chained before")
        try:
            chained = self.recorder.backfill_chain()
        except ChainExists as exc:
            raise ChainRefused(str(exc)) from exc
        position = self.sign_head(action=f"chain-init by {operator}") if chained else None
        log.warning(
            "existing store chained on request",
            extra={
                "fields": {
                    "store": self.recorder.events_table_name,
                    "events": chained,
                    "position": position,
                    "operator": operator,
                }
            },
        )
        return chained, position
