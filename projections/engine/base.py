"""What a projection is: its topics, tables, DDL, per-event handlers and purge.

Handlers are idempotent upserts in plain SQL over unqualified table names; the runner and
the rebuild set ``search_path`` so that the same SQL writes the live tables or the shadow
tables of a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Cursor

from events.domain.payloads.base import Payload
from events.store.published import PublishedEnvelope

Handler = Callable[[Cursor[Any], PublishedEnvelope, Any], None]


class MessageRefused(ValueError):
    """A valid envelope this read model cannot take (it refers to something the projection
    has not seen): the message is dead-lettered with this reason. Any other error of a
    handler is a bug of ours and halts the projection instead of dropping clinical data."""


Purge = Callable[[Cursor[Any], UUID], None]
# What a read model keeps of an erased event from its clear envelope alone (who, when, which
# patient, what type): the access log's pseudonymous rows, the same live and rebuilt.
ErasedHandler = Callable[[Cursor[Any], PublishedEnvelope], None]


@dataclass(frozen=True)
class Projection:
    """A read model kept by one consumer group."""

    name: str
    topics: tuple[str, ...]
    tables: tuple[str, ...]
    ddl: str
    handlers: Mapping[str, Handler]
    purge: Purge
    on_erased: ErasedHandler | None = None

    def apply(self, cur: Cursor[Any], envelope: PublishedEnvelope, payload: Payload) -> None:
        handler = self.handlers.get(envelope.event_type)
        if handler is not None:
            handler(cur, envelope, payload)
