"""Payloads of lab orders and results: placed, specimen, results, amendments, cancellation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from events.domain.payloads.base import LoincCode, NonEmpty, Payload

Priority = Literal["routine", "urgent", "stat"]
Flag = Literal["N", "L", "H", "LL", "HH"]


class OrderPlaced(Payload):
    """A physician ordered a lab test (LOINC code) for the patient."""

    event_type = "order.placed"

    test_code: LoincCode
    test_name: NonEmpty
    priority: Priority
    ordering_physician: UUID


class SpecimenCollected(Payload):
    """The specimen for the order was collected."""

    event_type = "specimen.collected"

    collected_at: datetime
    specimen_type: NonEmpty | None = None


class AnalyteResult(BaseModel):
    """One analyte's result, with the flag computed when it was recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    result_id: UUID
    code: LoincCode
    name: NonEmpty
    value: float
    unit: NonEmpty
    reference_low: float | None = None
    reference_high: float | None = None
    flag: Flag


class ResultReceived(Payload):
    """The lab reported one or more analyte results for the order."""

    event_type = "result.received"

    results: tuple[AnalyteResult, ...] = Field(min_length=1)


class ResultAmended(Payload):
    """A reported result was corrected; the original stays in history."""

    event_type = "result.amended"

    result_id: UUID
    value: float
    unit: NonEmpty
    reference_low: float | None = None
    reference_high: float | None = None
    flag: Flag
    previous_value: float
    previous_unit: NonEmpty


class OrderCancelled(Payload):
    """The order was cancelled (the envelope carries the reason)."""

    event_type = "order.cancelled"


class ResultAcknowledged(Payload):
    """The ordering physician acknowledged an abnormal or critical result."""

    event_type = "result.acknowledged"

    result_id: UUID
