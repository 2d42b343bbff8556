"""What the key service answers, and its audit: ``<store>_key_fetches``.

A principal (the common name of its client certificate) asks for the payload keys of one
topic and some patients (``"service"`` names the store's operations key, which seals the
events about no patient). It gets them only for a topic it may read
(``services.principals.may_read``); a patient whose data key was destroyed gets ``null``.
The topic asked for is the Kafka topic the message came from: one of this deployment's
(``BACKBONE_TOPIC_PREFIX``), whose contract name the grant is checked on and the subkey is
derived from, so a prefix changes no key; another deployment's topic is refused.
Every key asked for is one audit row (who, which topic, which patient, when, granted or
why not), in the store's database but not as events: those would travel to Kafka and be
fetched for again.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from psycopg import sql
from psycopg_pool import ConnectionPool

from events.domain.topics import ALL_TOPICS, DEADLETTER, TopicNames
from events.store.kafka_payloads import SERVICE_KEY
from events.store.keys import OPERATIONS_KEY_ID
from events.store.migrating import create_if_allowed
from events.store.payload_keys import PayloadKeys
from services.principals import may_read

log = logging.getLogger("backbone.keys")
SEALED_TOPICS = frozenset(t.name for t in ALL_TOPICS if t is not DEADLETTER)
MAX_KEYS = 5000


class Refused(Exception):
    """The principal may not have these keys (HTTP 403)."""


class BadRequest(Exception):
    """The request is not one the service understands (HTTP 400)."""


@dataclass(frozen=True)
class Answer:
    """The keys of one request: base64 subkey by the name asked for, None when erased;
    the names whose key this store never had (not an erasure) in ``unknown``."""

    topic: str
    keys: dict[str, str | None]
    unknown: tuple[str, ...] = ()


def parse_refs(refs: object) -> dict[str, UUID]:
    """The key ids of the names asked for (patient ids, or ``"service"``)."""
    if not isinstance(refs, list) or not refs or len(refs) > MAX_KEYS:
        raise BadRequest(f"patient_ids must be a list of 1 to {MAX_KEYS} ids")
    ids: dict[str, UUID] = {}
    for ref in refs:
        if ref == SERVICE_KEY:
            ids[ref] = OPERATIONS_KEY_ID
            continue
        try:
            ids[ref] = UUID(str(ref))
        except ValueError:
            raise BadRequest("patient_ids holds something that is not a UUID") from None
    return ids


class KeyGrants:
    """Answers key requests for one store and audits each key asked for."""

    def __init__(
        self,
        keys: PayloadKeys,
        pool: ConnectionPool,
        store_name: str,
        allowed: Callable[[str, str], bool] = may_read,
        topics: TopicNames | None = None,
    ) -> None:
        self.keys = keys
        self.pool = pool
        self.allowed = allowed
        self.topics = topics or TopicNames()
        self.table = sql.Identifier(f"{store_name}_key_fetches")
        self._insert = sql.SQL(
            "INSERT INTO {} (principal, topic, patient_id, service_key, granted, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(self.table)

    def create_table(self) -> None:
        with self.pool.connection() as conn:
            create_if_allowed(
                conn,
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                    "at timestamptz NOT NULL DEFAULT now(), principal text NOT NULL, "
                    "topic text NOT NULL, patient_id uuid, service_key boolean NOT NULL, "
                    "granted boolean NOT NULL, reason text)"
                ).format(self.table),
            )

    def answer(self, principal: str, topic: object, refs: object) -> Answer:
        """The keys asked for, audited; ``Refused`` or ``BadRequest`` (audited when it names
        a topic and keys) otherwise."""
        if not isinstance(topic, str):
            raise BadRequest("topic must be a string")
        ids = parse_refs(refs)
        logical = self.topics.logical(topic)
        if logical not in SEALED_TOPICS or not self.allowed(principal, logical):
            self._audit(principal, topic, ids, {}, "topic not granted")
            log.warning(
                "key fetch refused",
                extra={"fields": {"principal": principal, "topic": topic, "keys": len(ids)}},
            )
            raise Refused(f"{principal} may not read {topic}")
        found = self.keys.for_subscribers(logical, set(ids.values()))
        self._audit(principal, topic, ids, found, None)
        unknown = tuple(sorted(ref for ref, key_id in ids.items() if key_id not in found))
        erased = sum(k in found and found[k] is None for k in ids.values())
        log.info(
            "keys fetched",
            extra={
                "fields": {
                    "principal": principal,
                    "topic": topic,
                    "keys": len(ids),
                    "erased": erased,
                    "unknown": len(unknown),
                }
            },
        )
        keys = {ref: _b64(found[key_id]) for ref, key_id in ids.items() if key_id in found}
        return Answer(topic, keys, unknown)

    def _audit(
        self,
        principal: str,
        topic: str,
        ids: dict[str, UUID],
        found: dict[UUID, bytes | None],
        refused: str | None,
    ) -> None:
        rows: Sequence[tuple[object, ...]] = [
            (
                principal,
                topic,
                None if key_id == OPERATIONS_KEY_ID else key_id,
                key_id == OPERATIONS_KEY_ID,
                refused is None and found.get(key_id) is not None,
                refused or withheld_because(found, key_id),
            )
            for key_id in ids.values()
        ]
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(self._insert, rows)


def withheld_because(found: dict[UUID, bytes | None], key_id: UUID) -> str | None:
    """Why a key asked for was not given: erased, or never known to this store."""
    if key_id not in found:
        return "unknown key"
    return None if found[key_id] is not None else "erased"


def _b64(key: bytes | None) -> str | None:
    return base64.b64encode(key).decode() if key is not None else None
