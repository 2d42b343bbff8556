"""What the listener and the translations of HL7 v2 messages agree on.

A translation reads one parsed message and answers a ``Translation``: which patient it is
about (so messages for one patient are applied in arrival order) and a step that applies it
through the clinical store's commands. A message the backbone cannot or will not apply raises
``Refusal``: ``AR`` for an unparseable or unsupported message, ``AE`` for a clinical-rule
refusal or an unknown patient; the listener answers it as an ACK with an ERR segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult

AckCode = Literal["AA", "AE", "AR"]


@dataclass(frozen=True)
class Sender:
    """The sending system of a message: MSH-3 (application) and MSH-4 (facility)."""

    application: str
    facility: str

    @property
    def name(self) -> str:
        return f"{self.application}|{self.facility}"


class Refusal(Exception):
    """A message the backbone refuses: the ACK code and the ERR segment's location and text.

    ``location`` is the HL7 position that is wrong (``"PID-3"``, ``"OBX-5"``, ``"MSH-9"``);
    ``patient_id`` names the patient when the refusal is about a known one (the rejected
    message is then kept encrypted with that patient's key). ``error_code`` is the ERR-3
    code of HL7 table 0357 (``"204"`` unknown key identifier, ``"101"`` required field
    missing, ...); without it the listener chooses one from the code and location."""

    def __init__(
        self,
        code: Literal["AE", "AR"],
        location: str,
        reason: str,
        patient_id: UUID | None = None,
        *,
        error_code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.code: Literal["AE", "AR"] = code
        self.location = location
        self.reason = reason
        self.patient_id = patient_id
        self.error_code = error_code


# Applies a translated message: the store, and a context whose actor is the sender's
# principal (the listener sets reason, correlation and the idempotency key prefix).
Apply = Callable[[ClinicalStore, CommandContext], list[CommandResult]]


@dataclass(frozen=True)
class Translation:
    """A message read and ready to apply.

    ``patient_key`` orders the work: messages with the same key are applied one after the
    other in arrival order (the PID-3 identifier and its assigning authority); ``apply`` runs
    the commands and raises ``Refusal`` for what a command refuses."""

    message_type: str
    control_id: str
    patient_key: str
    apply: Apply
    summary: dict[str, str] = field(default_factory=dict)
