"""The witness: signed checkpoints of the chain's head, kept outside the database.

Whoever administers PostgreSQL can delete events, truncate the chain and checkpoint tables
and relink what is left; the chain in the database then checks out. The witness is a file
they cannot reach (``BACKBONE_WITNESS_DIR``: by default ``.data/witness/``; in production a
directory on another host or a write-once volume, never the database server's disks). One
JSON line per signed checkpoint: the store, the position, the chain's global hash there,
the number of links up to it, when and why it was signed, and an Ed25519 signature over all
of it. Lines are appended (``O_APPEND``) and fsync'd one by one; nothing rewrites the file.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_DOMAIN = b"clinical-backbone witness\n"
_TAIL = 64 * 1024  # far more than one line


class WitnessUnreadable(Exception):
    """A witness line cannot be parsed or its signature does not verify."""


@dataclass(frozen=True)
class WitnessLine:
    """One signed checkpoint: ``count`` chain links up to ``position``, whose global hash
    is ``head_hash``; ``action`` says what signed it (``checkpoint`` or ``chain-init``)."""

    store: str
    position: int
    head_hash: bytes
    count: int
    signed_at: datetime
    action: str = "checkpoint"
    signature: bytes = b""

    def _body(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "position": self.position,
            "head_hash": self.head_hash.hex(),
            "count": self.count,
            "signed_at": self.signed_at.isoformat(),
            "action": self.action,
        }

    def message(self) -> bytes:
        """The bytes signed: every field but the signature, canonically encoded."""
        return _DOMAIN + json.dumps(self._body(), sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: Ed25519PrivateKey) -> WitnessLine:
        return replace(self, signature=key.sign(self.message()))

    def check(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> str:
        body = {**self._body(), "signature": base64.b64encode(self.signature).decode()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WitnessLine:
        raw = json.loads(text)
        return cls(
            store=str(raw["store"]),
            position=int(raw["position"]),
            head_hash=bytes.fromhex(raw["head_hash"]),
            count=int(raw["count"]),
            signed_at=datetime.fromisoformat(raw["signed_at"]),
            action=str(raw.get("action", "checkpoint")),
            signature=base64.b64decode(raw["signature"]),
        )


class Witness:
    """The append-only witness file of one store: ``<directory>/<store name>.jsonl``."""

    def __init__(self, directory: Path, store: str) -> None:
        self.store = store
        self.path = directory / f"{store}.jsonl"

    def append(self, line: WitnessLine) -> None:
        """Append one line and fsync it (and the directory, when the file is new)."""
        if line.store != self.store:
            raise ValueError("a witness line of another store")
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        new = not self.path.exists()
        data = (line.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def exists(self) -> bool:
        """Whether anything was ever witnessed for this store."""
        return self.path.exists() and self.path.stat().st_size > 0

    def lines(self, public_key: Ed25519PublicKey) -> list[WitnessLine]:
        """Every line, each checked against the public key. A last line without its newline
        (a crash while it was written) is ignored; any other bad line is refused."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        complete = text.split("\n")[:-1]  # what follows the last newline attests nothing
        found = []
        for number, row in enumerate(complete, start=1):
            line = self._parsed(row, number)
            if not line.check(public_key):
                raise WitnessUnreadable(f"witness line {number}: signature invalid")
            found.append(line)
        return found

    def last(self, public_key: Ed25519PublicKey) -> WitnessLine | None:
        """The last complete line (read from the file's tail: the relay asks often)."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL))
            complete = handle.read().split(b"\n")[:-1]
        if size > _TAIL:
            complete = complete[1:]  # the first may be cut
        if not complete:
            return self.newest(public_key) if size > _TAIL else None
        line = self._parsed(complete[-1].decode("utf-8"), "last")
        if not line.check(public_key):
            raise WitnessUnreadable("the last witness line: signature invalid")
        return line

    def _parsed(self, row: str, where: object) -> WitnessLine:
        try:
            line = WitnessLine.from_json(row)
        except (ValueError, KeyError, TypeError) as exc:
            raise WitnessUnreadable(f"witness line {where} cannot be read ({exc})") from None
        if line.store != self.store:
            raise WitnessUnreadable(f"witness line {where} belongs to store {line.store!r}")
        return line

    def newest(self, public_key: Ed25519PublicKey) -> WitnessLine | None:
        """The line that attests the most history (the highest position)."""
        found = self.lines(public_key)
        return max(found, key=lambda line: line.position) if found else None
