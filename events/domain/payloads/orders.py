"""Payloads of lab orders and results: placed, specimen, results, amendments, cancellation.

``encounter_id`` (the encounter the order or result belongs to) and ``placer_number`` (the
ordering system's number of an order) were added as optional fields: events recorded before
them carry none (null), so the schema versions did not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.domain.payloads.base import LoincCode, NonEmpty, Note, Payload

Priority = Literal["routine", "urgent", "stat"]
Flag = Literal["N", "L", "H", "LL", "HH"]
ResultStatus = Literal["preliminary", "final", "corrected"]
Comparator = Literal["<", "<=", ">", ">="]
ValueType = Literal["numeric", "text"]


class OrderPlaced(Payload):
    """A physician ordered a lab test (LOINC code) for the patient."""

    event_type = "order.placed"

    test_code: LoincCode
    test_name: NonEmpty
    priority: Priority
    ordering_physician: UUID
    # The patient's open encounter when the order was placed (None: none was open).
    encounter_id: UUID | None = None
    # The ordering system's order number (HL7 v2 ORC-2 / OBR-2), when it came with one.
    placer_number: NonEmpty | None = None


class SpecimenCollected(Payload):
    """The specimen for the order was collected."""

    event_type = "specimen.collected"

    collected_at: datetime
    specimen_type: NonEmpty | None = None


class AnalyteResultV1(BaseModel):
    """One analyte's numeric result (version 1 of ``result.received``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    result_id: UUID
    code: LoincCode
    name: NonEmpty
    value: float
    unit: NonEmpty
    reference_low: float | None = None
    reference_high: float | None = None
    flag: Flag


class ReportedValue(BaseModel):
    """A reported value: a number (with its comparator, ``<0.01``) or text (``positive``).

    ``value`` is the number (0.01 of ``<0.01``), None for text; ``value_text`` is the value
    as the lab wrote it when it is not a plain number. ``flag`` is None when no numeric flag
    applies: a text value, or a comparator whose bound leaves the flag ambiguous.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    value: float | None
    comparator: Comparator | None = None
    value_text: Note | None = None
    value_type: ValueType = "numeric"
    unit: NonEmpty | None
    reference_low: float | None = None
    reference_high: float | None = None
    flag: Flag | None
    status: ResultStatus = "final"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.value_type == "numeric" and (self.value is None or self.unit is None):
            raise ValueError("a numeric result has a value and a unit")
        if self.value_type == "text" and (
            self.value is not None or self.comparator is not None or self.value_text is None
        ):
            raise ValueError("a text result has value_text only, no number or comparator")
        if self.comparator is not None and self.value_text is None:
            raise ValueError("a comparator value keeps its text as reported")
        return self


class AnalyteResult(ReportedValue):
    """One analyte's result, with the flag computed when it was recorded."""

    result_id: UUID
    code: LoincCode
    name: NonEmpty


class ResultReceivedV1(Payload):
    """The lab reported numeric analyte results for the order (before statuses and text)."""

    event_type = "result.received"
    schema_version = 1

    results: tuple[AnalyteResultV1, ...] = Field(min_length=1)


class ResultReceived(Payload):
    """The lab reported one or more analyte results for the order, each with its status
    (preliminary or final). Version 1 events upcast as final numeric results."""

    event_type = "result.received"
    schema_version = 2

    results: tuple[AnalyteResult, ...] = Field(min_length=1)
    # The encounter the results belong to: the patient's open one when they were received,
    # else the one the order was placed in (None: neither).
    encounter_id: UUID | None = None


class ResultAmendedV1(Payload):
    """A reported numeric result was corrected (before statuses and text values)."""

    event_type = "result.amended"
    schema_version = 1

    result_id: UUID
    value: float
    unit: NonEmpty
    reference_low: float | None = None
    reference_high: float | None = None
    flag: Flag
    previous_value: float
    previous_unit: NonEmpty


class ResultAmended(Payload, ReportedValue):
    """A reported result was replaced: finalised (preliminary to final, or an updated
    preliminary) or corrected (``status`` corrected, with a reason). The original stays
    in history; ``previous_*`` is what it replaced. Version 1 upcasts as corrected."""

    event_type = "result.amended"
    schema_version = 2

    result_id: UUID
    previous_value: float | None
    previous_text: Note | None = None
    previous_unit: NonEmpty | None
    previous_flag: Flag | None = None
    previous_status: ResultStatus | None = None


class OrderCancelled(Payload):
    """The order was cancelled (the envelope carries the reason)."""

    event_type = "order.cancelled"


class ResultAcknowledged(Payload):
    """The ordering physician acknowledged an abnormal or critical result."""

    event_type = "result.acknowledged"

    result_id: UUID


class EscalationRecipient(BaseModel):
    """A care-team member an escalation notified, with their role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: UUID
    role: NonEmpty


class ResultEscalated(Payload):
    """A critical result stayed unacknowledged past the escalation time: the rest of the
    patient's care team (nurses, physicians, pharmacists) was notified."""

    event_type = "result.escalated"

    result_id: UUID
    flag: Flag
    notified_at: datetime = Field(description="When the ordering physician was notified.")
    after_minutes: float = Field(gt=0, description="The escalation time that passed.")
    notified: tuple[EscalationRecipient, ...]
