"""The stored event: an envelope (who, when, why, which stream) around a validated payload.

``ClinicalEvent`` satisfies the ``eventsourcing`` domain-event protocol (``originator_id``,
``originator_version``, ``timestamp``) so the library's application and recorders store it;
``timestamp`` is the system time the event was recorded (``recorded_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from events.domain.payloads.base import Payload


class Actor(BaseModel):
    """Who caused an event: a user and their role, possibly acting for someone else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: UUID
    role: str
    on_behalf_of: UUID | None = None


SYSTEM_ACTOR = Actor(user_id=UUID(int=0), role="system")
# The caller of a request that did not authenticate (a denial names no one).
ANONYMOUS_ACTOR = Actor(user_id=UUID(int=0), role="anonymous")


@dataclass(frozen=True)
class ClinicalEvent:
    """One immutable clinical event as the store keeps it."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    event_id: UUID
    event_type: str
    schema_version: int
    patient_id: UUID | None
    occurred_at: datetime
    actor: Actor
    reason: str | None
    correlation_id: UUID
    causation_id: UUID | None
    payload: Payload

    @property
    def aggregate_id(self) -> UUID:
        return self.originator_id

    @property
    def aggregate_version(self) -> int:
        return self.originator_version

    @property
    def recorded_at(self) -> datetime:
        return self.timestamp

    def envelope(self, position: int | None) -> dict[str, Any]:
        """The published JSON envelope of the contract (payload decrypted)."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "patient_id": str(self.patient_id) if self.patient_id else None,
            "aggregate_id": str(self.originator_id),
            "aggregate_version": self.originator_version,
            "position": position,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.timestamp.isoformat(),
            "actor": self.actor.model_dump(mode="json"),
            "reason": self.reason,
            "correlation_id": str(self.correlation_id),
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "payload": self.payload.model_dump(mode="json"),
        }
