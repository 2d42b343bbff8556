"""Per-patient data keys, wrapped by a master key; destroying a key erases the patient.

Each patient (and the non-patient "operations" stream) has its own random AES-256 data
key. Data keys are stored wrapped (AES-256-GCM under the master key, the key id as
associated data) in ``<store name>_data_keys``; the master key is read from
``BACKBONE_MASTER_KEY_FILE``. ``destroy`` deletes the wrapped key: ciphertext under it can
never be decrypted again.

The key of hashed ids (``BACKBONE_ID_KEY_FILE``) is a file of its own, so that the master
key can be rotated (``events.store.rotation``) without changing any MRN index entry or
user id. A keyring given its master key file follows a rotation done by another process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.domain.errors import PatientErasedError
from events.store.migrating import create_if_allowed

OPERATIONS_KEY_ID = UUID(int=0)
KEY_BYTES = 32
NONCE_BYTES = 12
# Until the id key had its own file, it was this subkey of the master key.
ID_KEY_PURPOSE = b"clinical-backbone/mrn-index"


class MasterKeyMissing(RuntimeError):
    """The master key file does not exist or is unusable."""


def write_key_file(path: Path, key: bytes) -> bool:
    """Write a key (base64) to a new 0600 file, synced; False if the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_key_file(path: Path, what: str = "master key", hint: str = "backbone keys init") -> bytes:
    """A 256-bit key from its base64 file, or MasterKeyMissing saying what is wrong."""
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError as exc:
        raise MasterKeyMissing(f"{what} file {path} not found: run `{hint}`") from exc
    except ValueError as exc:
        raise MasterKeyMissing(f"{what} file {path} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise MasterKeyMissing(f"{what} in {path} must be {KEY_BYTES} bytes")
    return key


def create_master_key(path: Path) -> bool:
    """Write a new random master key with 0600 permissions unless one exists."""
    return write_key_file(path, secrets.token_bytes(KEY_BYTES))


def load_master_key(path: Path) -> bytes:
    return read_key_file(path, hint="make setup` or `backbone keys init")


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key (which file is which), safe to log and record."""
    return hashlib.sha256(b"clinical-backbone/key-fingerprint" + key).hexdigest()[:16]


def ensure_id_key(path: Path, master: bytes, has_data: Callable[[], bool]) -> tuple[bytes, bool]:
    """The key of hashed ids, and whether it was derived from the master key just now.

    A missing file is created: for a store that already holds data, with the value the ids
    were made with until now (the master key's subkey), so that every existing id still
    resolves; for an empty store, random. Concurrent starts agree (the first file wins)."""
    if path.exists():
        return read_key_file(path, "id key"), False
    migrate = has_data()
    key = derive_key(master, ID_KEY_PURPOSE) if migrate else secrets.token_bytes(KEY_BYTES)
    created = write_key_file(path, key)
    return read_key_file(path, "id key"), migrate and created


def derive_key(master: bytes, purpose: bytes) -> bytes:
    """A subkey of the master key for one purpose (e.g. the MRN index)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


class KeyStore(Protocol):
    """Where wrapped data keys live: PostgreSQL in production, a dict in unit tests."""

    def load(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        """Wrapped keys by id; ``None`` for a destroyed key; absent ids are missing."""

    def insert(self, wrapped: dict[UUID, bytes]) -> None:
        """Store wrapped keys, each unless one exists for its id (first writer wins)."""

    def destroy(self, key_id: UUID) -> bool:
        """Forget the wrapped key (recording the destruction even if none existed yet)."""


class MemoryKeyStore:
    """Wrapped keys in a dict, for unit tests."""

    def __init__(self) -> None:
        self._keys: dict[UUID, bytes | None] = {}
        self._lock = threading.Lock()

    def load(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        with self._lock:
            return {k: self._keys[k] for k in key_ids if k in self._keys}

    def insert(self, wrapped: dict[UUID, bytes]) -> None:
        with self._lock:
            for key_id, key in wrapped.items():
                self._keys.setdefault(key_id, key)

    def destroy(self, key_id: UUID) -> bool:
        with self._lock:
            self._keys[key_id] = None
            return True


class PostgresKeyStore:
    """Wrapped keys in the store's ``<store name>_data_keys`` table."""

    def __init__(self, pool: ConnectionPool, table: str) -> None:
        self.pool = pool
        name = sql.Identifier(table)
        self._create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (key_id uuid PRIMARY KEY, wrapped_key bytea, "
            "created_at timestamptz NOT NULL DEFAULT now(), destroyed_at timestamptz)"
        ).format(name)
        self._select = sql.SQL("SELECT key_id, wrapped_key FROM {} WHERE key_id = ANY(%s)").format(
            name
        )
        self._insert = sql.SQL(
            "INSERT INTO {} (key_id, wrapped_key, destroyed_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key_id) DO NOTHING"
        ).format(name)
        self._destroy = sql.SQL(
            "INSERT INTO {0} AS k (key_id, wrapped_key, destroyed_at) VALUES (%s, NULL, now()) "
            "ON CONFLICT (key_id) DO UPDATE SET wrapped_key = NULL, "
            "destroyed_at = COALESCE(k.destroyed_at, now())"
        ).format(name)
        self._any = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name)
        with self.pool.connection() as conn:
            create_if_allowed(conn, self._create)

    def has_keys(self) -> bool:
        """Whether any key was ever created here (every stored event has one)."""
        with self.pool.connection() as conn:
            row = conn.execute(self._any).fetchone()
        return bool(row and row[0])

    def load(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        ids = list(key_ids)
        with self.pool.connection() as conn:
            rows = conn.execute(self._select, (ids,)).fetchall()
        return {row[0]: (bytes(row[1]) if row[1] is not None else None) for row in rows}

    def insert(self, wrapped: dict[UUID, bytes]) -> None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(self._insert, [(k, w, None) for k, w in wrapped.items()])

    def destroy(self, key_id: UUID) -> bool:
        with self.pool.connection() as conn:
            # One statement: a key created concurrently cannot survive the destruction.
            conn.execute(self._destroy, (key_id,))
            return True


# Writing keys checked in the key store moments ago, for the block of ``Keyring.writing``.
_CHECKED: ContextVar[dict[UUID, bytes | None] | None] = ContextVar("checked_keys", default=None)


class Keyring:
    """Unwrapped data keys by id, created on first use and cached for ``cache_ttl_s``.

    The read cache is short-lived so that a key destroyed by another process stops
    decrypting here soon after; ``refresh`` drops it at once (the relay does so before each
    batch). Writing always checks the key store.

    Given ``master_file``, the keyring follows a rotation: it wraps new keys under the key
    the file holds now, and a wrapped key its master key cannot open is retried under the
    file's current key and then under the retired ones beside it.
    """

    def __init__(
        self,
        master_key: bytes,
        store: KeyStore,
        cache_ttl_s: float = 60.0,
        master_file: Path | None = None,
    ) -> None:
        self._wrapper = AESGCM(master_key)
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.master_file = master_file
        self._file_seen = self._file_state()
        self._cache: dict[UUID, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def _file_state(self) -> tuple[int, int] | None:
        if self.master_file is None:
            return None
        try:
            stat = self.master_file.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _follow_rotation(self) -> None:
        """Take the master key file's key if the file changed since it was last read."""
        state = self._file_state()
        if self.master_file is None or state is None or state == self._file_seen:
            return
        self._wrapper = AESGCM(load_master_key(self.master_file))
        self._file_seen = state

    def _retired(self) -> list[AESGCM]:
        if self.master_file is None:
            return []
        pattern = f"{self.master_file.name}.retired-*"
        return [AESGCM(load_master_key(p)) for p in sorted(self.master_file.parent.glob(pattern))]

    def _unwrap(self, key_id: UUID, wrapped: bytes) -> bytes:
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return self._wrapper.decrypt(nonce, body, key_id.bytes)
        except InvalidTag:
            if self.master_file is None:
                raise
        self._follow_rotation()
        for wrapper in (self._wrapper, *self._retired()):
            try:
                return wrapper.decrypt(nonce, body, key_id.bytes)
            except InvalidTag:
                continue
        raise InvalidTag

    def _wrap(self, key_id: UUID, key: bytes) -> bytes:
        self._follow_rotation()
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._wrapper.encrypt(nonce, key, key_id.bytes)

    def _cached(self, key_id: UUID) -> bytes | None:
        with self._lock:
            entry = self._cache.get(key_id)
        if entry is None or time.monotonic() - entry[0] > self.cache_ttl_s:
            return None
        return entry[1]

    def _remember(self, key_id: UUID, key: bytes) -> None:
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_id] = (time.monotonic(), key)

    def key_for_writing(self, key_id: UUID) -> bytes:
        """The data key, created if the id has none yet; erased ids refuse.

        Asks the key store, never the cache: a key destroyed by another process must stop
        new events at once, not after the cache expires. Inside ``writing`` the block's one
        check answers.
        """
        if key_id == OPERATIONS_KEY_ID and (key := self._cached(key_id)) is not None:
            return key  # no patient's key: it is never destroyed
        checked = _CHECKED.get()
        found = checked if checked is not None and key_id in checked else self._check([key_id])
        return self._resolve(key_id, found.get(key_id))

    def _check(self, key_ids: set[UUID] | list[UUID]) -> dict[UUID, bytes | None]:
        found = self.store.load(key_ids)
        missing = [k for k in key_ids if k not in found]
        if missing:
            self.store.insert({k: self._wrap(k, secrets.token_bytes(KEY_BYTES)) for k in missing})
            found = self.store.load(key_ids)
        return found

    @contextmanager
    def writing(self, key_ids: Iterable[UUID]) -> Iterator[None]:
        """Check (and create) many writing keys in one round trip; inside the block,
        ``key_for_writing`` answers for them from this check (a bulk import's events)."""
        token = _CHECKED.set(self._check(set(key_ids)))
        try:
            yield
        finally:
            _CHECKED.reset(token)

    def key_for_reading(self, key_id: UUID) -> bytes:
        """The data key; PatientErasedError if it was destroyed or never existed."""
        cached = self._cached(key_id)
        if cached is not None:
            return cached
        return self._resolve(key_id, self.store.load([key_id]).get(key_id))

    def read_fresh(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        """Data keys straight from the key store, never the cache (the key service's answer
        must follow an erasure at once); None for a destroyed key. A key the store never
        had is absent: that is not an erasure, and must not be taken for one."""
        wanted = set(key_ids)
        found = self.store.load(wanted) if wanted else {}
        return {
            k: self._unwrap(k, wrapped) if wrapped is not None else None
            for k, wrapped in found.items()
        }

    def prefetch(self, key_ids: Iterable[UUID]) -> None:
        """Load many keys in one round trip (the relay calls this per batch)."""
        wanted = {k for k in key_ids if self._cached(k) is None}
        if not wanted:
            return
        for key_id, wrapped in self.store.load(wanted).items():
            if wrapped is not None:
                self._remember(key_id, self._unwrap(key_id, wrapped))

    def _resolve(self, key_id: UUID, wrapped: bytes | None) -> bytes:
        if wrapped is None:
            raise PatientErasedError(key_id)
        key = self._unwrap(key_id, wrapped)
        self._remember(key_id, key)
        return key

    def destroy(self, key_id: UUID) -> bool:
        if key_id == OPERATIONS_KEY_ID:
            raise ValueError("the operations key belongs to no patient and is never destroyed")
        with self._lock:
            self._cache.pop(key_id, None)
        return self.store.destroy(key_id)

    def refresh(self) -> None:
        with self._lock:
            self._cache.clear()
