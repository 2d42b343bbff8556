"""Running one resource's commands: a deterministic idempotency key per step, refusals kept.

The key is ``fhir:<source>:<resourceType>:<identity>:<step>``, so importing the same input
again (by the same account: the store scopes keys by actor) replays every stored step and
stores nothing new; ``CommandResult.replayed`` tells the report "already imported".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.domain.errors import ConflictError, DomainError, NotPermitted
from services.fhir.importing.reader import Entry


class Refused(Exception):
    """The backbone refused a step (or the caller may not send it): status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def validation_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


@dataclass
class Steps:
    """The store, the importer's context and the input's source tag."""

    store: ClinicalStore
    ctx: CommandContext
    tag: str

    def key(self, entry: Entry, step: str) -> str:
        return f"fhir:{self.tag}:{entry.resource_type}:{entry.identity}:{step}"

    def run(
        self,
        entry: Entry,
        step: str,
        command: Callable[[CommandContext], CommandResult],
        occurred_at: datetime | None,
        reason: str | None = None,
        *,
        guarded: bool = True,
    ) -> CommandResult:
        """Run one command under the step's key; a refusal becomes ``Refused``.
        ``guarded=False`` drops the care-team guard (a registration, as on ``/v1``)."""
        ctx = replace(
            self.ctx,
            guard=self.ctx.guard if guarded else None,
            idempotency_key=self.key(entry, step),
            request=None,
            occurred_at=occurred_at,
            reason=reason or self.ctx.reason,
        )
        try:
            return command(ctx)
        except Refused:
            raise
        except ConflictError as exc:
            raise Refused(409, str(exc)) from exc
        except NotPermitted as exc:
            raise Refused(403, str(exc)) from exc
        except DomainError as exc:
            raise Refused(422, str(exc)) from exc
        except ValidationError as exc:
            raise Refused(422, validation_text(exc)) from exc
