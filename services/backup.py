"""Encrypted backups of the store: ``take_backup`` writes one, ``restore_backup`` loads one.

A backup is a directory of two files:

- ``store.dump.enc``: the store's consistent dump (``events.store.dump``: events, chain,
  checkpoints, wrapped data keys, idempotency claims, patient index) encrypted with
  AES-256-GCM in 1 MiB chunks, under a subkey of the backup key salted with the backup's
  random id. Each chunk's associated data is the backup id, the chunk's index and whether
  it is the last one: chunks cannot be reordered, dropped, cut off or swapped between
  backups without the decryption failing.
- ``manifest.json``: store name, head position, chain head, tables and row counts, the
  ciphertext's size and SHA-256, and an HMAC over all of it under the backup key. No patient
  data, no key: only fingerprints of the id key and of the backup key.

The backup key (``BACKBONE_BACKUP_KEY_FILE``) is never the master key and never inside the
backup's directory. The master key and the id key are not in the backup: the data keys in
it stay wrapped, so a stolen backup and its backup key still read no patient. A restore
checks the manifest's HMAC and the ciphertext's hash before loading anything, and refuses a
target store that is not empty.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.settings import StoreSettings
from events.store.dump import DumpInfo, RestoreRefused, dump_store, load_store
from events.store.keys import (
    KEY_BYTES,
    MasterKeyMissing,
    derive_key,
    key_fingerprint,
    load_master_key,
    read_key_file,
    write_key_file,
)
from services.bootstrap import Backbone, schema_lock
from services.hl7.ledger import Ledger

DUMP_FILE = "store.dump.enc"
MANIFEST_FILE = "manifest.json"
MAGIC = b"CBBACKUP1"
CHUNK = 1 << 20
FORMAT = 1
_CHUNK_HEAD = struct.Struct(">?I")
Progress = Callable[[int], None]


class BackupRefused(RuntimeError):
    """The backup cannot be taken or restored as asked; nothing was written or loaded."""


def create_backup_key(path: Path) -> bool:
    """Write a new random backup key (0600) unless one exists."""
    return write_key_file(path, secrets.token_bytes(KEY_BYTES))


def backup_key(settings: StoreSettings, *, create: bool) -> bytes:
    """The backup key, refused if it is the master key or the id key."""
    path = settings.backup_key_file
    if create:
        create_backup_key(path)
    key = read_key_file(path, "backup key", "backbone keys init-backup")
    for other in (settings.master_key_file, settings.id_key_path):
        if other.exists() and hmac.compare_digest(key, read_key_file(other)):
            raise BackupRefused(f"the backup key {path} must not be the same key as {other}")
    return key


def _chunk_aad(backup_id: bytes, index: int, last: bool) -> bytes:
    return backup_id + struct.pack(">Q?", index, last)


def _nonce(index: int) -> bytes:
    return struct.pack(">IQ", 0, index)  # unique: one subkey per backup


class _Encrypting:
    """A writer that encrypts what it is given in chunks, hashing the ciphertext."""

    def __init__(self, handle: BinaryIO, key: bytes, backup_id: bytes) -> None:
        self.handle, self.backup_id = handle, backup_id
        self.aead = AESGCM(derive_key(key, b"clinical-backbone/backup/" + backup_id))
        self.buffer = bytearray()
        self.index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._out(MAGIC + backup_id)

    def _out(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def _chunk(self, plain: bytes, last: bool) -> None:
        sealed = self.aead.encrypt(
            _nonce(self.index), plain, _chunk_aad(self.backup_id, self.index, last)
        )
        self._out(_CHUNK_HEAD.pack(last, len(sealed)) + sealed)
        self.index += 1

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > CHUNK:  # keep some back: the last chunk is marked last
            self._chunk(bytes(self.buffer[:CHUNK]), False)
            del self.buffer[:CHUNK]

    def close(self) -> None:
        self._chunk(bytes(self.buffer), True)
        self.buffer.clear()


class _Decrypting:
    """Reads a backup's plaintext back, chunk by chunk, refusing any change to the file."""

    def __init__(self, handle: BinaryIO, key: bytes, backup_id: bytes) -> None:
        if handle.read(len(MAGIC) + len(backup_id)) != MAGIC + backup_id:
            raise BackupRefused("the dump file does not belong to this manifest")
        self.handle, self.backup_id = handle, backup_id
        self.aead = AESGCM(derive_key(key, b"clinical-backbone/backup/" + backup_id))
        self.index, self.done = 0, False
        self.buffer = bytearray()

    def _next(self) -> None:
        if self.done:
            raise BackupRefused("the dump ends before its data does")
        head = self.handle.read(_CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            raise BackupRefused("the dump file is cut off")
        last, size = _CHUNK_HEAD.unpack(head)
        sealed = self.handle.read(size)
        try:
            plain = self.aead.decrypt(
                _nonce(self.index), sealed, _chunk_aad(self.backup_id, self.index, last)
            )
        except InvalidTag:
            raise BackupRefused(f"chunk {self.index} of the dump was altered") from None
        self.index += 1
        self.done = last
        if last and self.handle.read(1):
            raise BackupRefused("the dump file has bytes after its last chunk")
        self.buffer += plain

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._next()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@dataclass(frozen=True)
class Manifest:
    """What a backup holds and how to check it (``manifest.json``), without its HMAC."""

    format: int
    backup_id: str
    store: str
    taken_at: str
    head: int
    chain_head: str | None
    tables: dict[str, dict[str, Any]]
    ciphertext_bytes: int
    ciphertext_sha256: str
    id_key: str
    backup_key: str

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())

    def signed(self, key: bytes) -> dict[str, Any]:
        body = asdict(self)
        return {**body, "hmac": _mac(key, body)}


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    mac_key = derive_key(key, b"clinical-backbone/backup-manifest")
    return hmac.new(mac_key, text, "sha256").hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def take_backup(settings: StoreSettings, out: Path, progress: Progress | None = None) -> Manifest:
    """Dump the store from one snapshot, encrypted, into the new or empty directory ``out``."""
    out, key_file = out.resolve(), settings.backup_key_file.resolve()
    if out in key_file.parents or key_file.parent in out.parents:
        raise BackupRefused(
            f"the backup key {settings.backup_key_file} must not be stored beside the backup: "
            "choose another --out"
        )
    if out.exists() and any(out.iterdir()):
        raise BackupRefused(f"{out} is not empty: give each backup a directory of its own")
    key = backup_key(settings, create=True)
    backbone = Backbone(store_settings=settings)
    try:  # opening the store makes (or migrates) its id key file
        _ = backbone.store
    finally:
        backbone.close()
    id_key = read_key_file(settings.id_key_path, "id key")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    backup_id = secrets.token_bytes(16)
    dump_path = out / DUMP_FILE
    fd = os.open(dump_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        sink = _Encrypting(handle, key, backup_id)
        info = dump_store(settings.database_url, settings.store_name, sink.write, progress)
        sink.close()
        handle.flush()
        os.fsync(handle.fileno())
    manifest = Manifest(
        FORMAT,
        backup_id.hex(),
        info.store,
        datetime.now(tz=UTC).isoformat(),
        info.head,
        info.chain_head,
        info.tables,
        sink.size,
        sink.sha256.hexdigest(),
        key_fingerprint(id_key),
        key_fingerprint(key),
    )
    staged = out / (MANIFEST_FILE + ".tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as text:
        json.dump(manifest.signed(key), text, indent=2, sort_keys=True)
        text.flush()
        os.fsync(text.fileno())
    os.replace(staged, out / MANIFEST_FILE)
    return manifest


def check_backup(settings: StoreSettings, directory: Path) -> Manifest:
    """The backup's manifest once its HMAC and the ciphertext's size and hash check out."""
    key = backup_key(settings, create=False)
    try:
        signed = json.loads((directory / MANIFEST_FILE).read_text())
    except (FileNotFoundError, ValueError) as exc:
        raise BackupRefused(f"{directory} holds no readable {MANIFEST_FILE}") from exc
    mac = signed.pop("hmac", "")
    if not hmac.compare_digest(str(mac), _mac(key, signed)):
        raise BackupRefused(
            "the manifest's HMAC does not match: it was altered, or this is not the backup "
            "key it was taken with"
        )
    manifest = Manifest(**signed)
    dump = directory / DUMP_FILE
    if not dump.exists() or dump.stat().st_size != manifest.ciphertext_bytes:
        raise BackupRefused(f"{dump} is missing or not the size the manifest says")
    if not hmac.compare_digest(_sha256(dump), manifest.ciphertext_sha256):
        raise BackupRefused(f"{dump} does not hash to the manifest's SHA-256: it was altered")
    return manifest


def restore_backup(
    settings: StoreSettings, directory: Path, store: str, progress: Progress | None = None
) -> Manifest:
    """Check the backup, then load it into the empty store ``store`` of this database."""
    manifest = check_backup(settings, directory)
    try:
        master_key = load_master_key(settings.master_key_file)
        id_key = read_key_file(settings.id_key_path, "id key")
    except MasterKeyMissing as exc:
        raise BackupRefused(f"{exc}: restore it from the key escrow first") from exc
    if key_fingerprint(id_key) != manifest.id_key:
        raise BackupRefused(
            f"the id key {settings.id_key_path} is not the one the backup's ids were made "
            "with: restore it from the key escrow first"
        )
    target = settings.model_copy(update={"store_name": store})
    backbone = Backbone(store_settings=target)
    try:  # the store's tables, as this version makes them
        _ = backbone.store
        backbone.verifier()
        with schema_lock(backbone.pool):
            Ledger(backbone.pool, store).create()  # the HL7 listener's tables
    finally:
        backbone.close()
    info = DumpInfo(manifest.store, manifest.head, manifest.chain_head, manifest.tables)
    key = backup_key(settings, create=False)
    with (directory / DUMP_FILE).open("rb") as handle:
        source = _Decrypting(handle, key, bytes.fromhex(manifest.backup_id))
        load_store(settings.database_url, store, info, source, master_key, progress)
    return manifest


__all__ = [
    "BackupRefused",
    "Manifest",
    "RestoreRefused",
    "check_backup",
    "create_backup_key",
    "restore_backup",
    "take_backup",
]
