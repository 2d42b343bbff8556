"""Tamper evidence: every stored event is chained to its stream and to the whole log.

``stream_hash = H(previous stream_hash, stream id, version, topic, stored state)`` and
``global_hash = H(previous global_hash, position, stream_hash)``, with SHA-256 over the
stored ciphertext: erasure (destroying a key) does not change a stored row, so the chains
stay verifiable. The recorder writes the chain in the same transaction as the events,
under the table lock that already serialises inserts.
"""

from __future__ import annotations

import hashlib
import struct
from uuid import UUID

GENESIS = bytes(32)


def stream_hash(
    previous: bytes, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    digest = hashlib.sha256(previous)
    digest.update(originator_id.bytes)
    digest.update(struct.pack(">q", version))
    digest.update(topic.encode())
    digest.update(b"\x00")
    digest.update(state)
    return digest.digest()


def global_hash(previous: bytes, position: int, stream: bytes) -> bytes:
    return hashlib.sha256(previous + struct.pack(">q", position) + stream).digest()
