"""Running a message's commands: one idempotency key per step, refusals as HL7 errors.

A message may need several commands (register, then start the encounter; place the order,
collect the specimen, receive the results). Each runs with the listener's idempotency key
plus a step suffix, so that a message sent again after a failure half-way replays the
steps that were stored and runs only the rest. A domain refusal becomes ``AE`` at the HL7
position the step reads; a race lost to another writer (``ConflictError``) is left to the
listener, because the same message may well be accepted when it is tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from uuid import UUID

from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.domain.aggregates.patients import PatientMergedError
from events.domain.errors import ConflictError, DomainError
from services.hl7.contract import Apply, Refusal, Sender, Translation
from services.hl7.translate.fields import Message, timestamp

# The command input fields a pydantic refusal may name, and where HL7 carries them.
Locations = Mapping[str, str]


@dataclass(frozen=True)
class Inbound:
    """What every translation knows about a message besides its segments."""

    message_type: str
    control_id: str
    sender: Sender
    authorities: frozenset[str]
    zone: tzinfo

    def translation(self, patient_key: str, apply: Apply, **summary: str) -> Translation:
        return Translation(self.message_type, self.control_id, patient_key, apply, summary)

    def event_time(self, message: Message) -> datetime | None:
        """When the event happened (EVN-6), else when the sender recorded it (EVN-2)."""
        evn = message.first("EVN")
        if evn is None:
            return None
        return timestamp(evn, 6, self.zone) or timestamp(evn, 2, self.zone)

    def reason(self, what: str) -> str:
        """A reason for a change whose message gives none: who sent it."""
        return f"{what} by {self.sender.name} ({self.message_type} {self.control_id})"


def _validation_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _where(fields: Locations | None, name: str | None, default: str) -> str:
    """The HL7 position of a command field a refusal names (``results.0.unit``: ``unit``)."""
    if not fields or not name:
        return default
    return fields.get(name) or fields.get(name.rsplit(".", 1)[-1]) or default


@dataclass
class Steps:
    """The commands of one message, run in order against the store."""

    store: ClinicalStore
    ctx: CommandContext
    patient_id: UUID | None = None
    results: list[CommandResult] = field(default_factory=list)

    def context(
        self, step: str, occurred_at: datetime | None, reason: str | None
    ) -> CommandContext:
        """The listener's context for one step: its own key, the message's clinical time."""
        key = self.ctx.idempotency_key
        return replace(
            self.ctx,
            idempotency_key=None if key is None else f"{key}:{step}",
            # The fingerprint is the step's own (``@command`` sets it from the input).
            request=None,
            occurred_at=occurred_at or self.ctx.occurred_at,
            reason=reason or self.ctx.reason,
        )

    def run(
        self,
        step: str,
        location: str,
        command: Callable[[CommandContext], CommandResult],
        *,
        occurred_at: datetime | None = None,
        reason: str | None = None,
        fields: Locations | None = None,
    ) -> CommandResult:
        """Run one command; a refusal names ``location`` (or the position of the field the
        domain names, through ``fields``)."""
        try:
            result = command(self.context(step, occurred_at, reason))
        except PatientMergedError as exc:  # not a race: the record takes no more writes
            raise Refusal("AE", "PID-3", str(exc), self.patient_id) from exc
        except ConflictError:
            raise
        except DomainError as exc:
            where = _where(fields, exc.field, location)
            raise Refusal("AE", where, str(exc), self.patient_id) from exc
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            where = _where(fields, str(loc[0]) if loc else None, location)
            raise Refusal("AE", where, _validation_text(exc), self.patient_id) from exc
        self.results.append(result)
        return result
