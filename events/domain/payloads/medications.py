"""Payloads of medication orders: prescribed, changed, discontinued, administered, verified.

``encounter_id`` and ``weight_kg`` of ``medication.prescribed`` were added as optional
fields: prescriptions recorded before them carry none (null), so the schema version did not
change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from events.domain.payloads.base import DrugCode, NonEmpty, Note, Payload

Route = Literal[
    "oral", "iv", "im", "sc", "inhaled", "topical", "rectal", "sublingual", "transdermal"
]
DoseUnit = Literal["mg", "g", "mcg", "units", "mL", "meq", "mmol"]
Frequency = Annotated[
    str,
    StringConstraints(
        pattern=r"^(once|daily|bid|tid|qid|q\d{1,2}h|prn|q\d{1,2}h prn|weekly|at bedtime|stat)$"
    ),
]
PositiveDose = Annotated[float, Field(gt=0, le=100_000)]


class MedicationPrescribed(Payload):
    """A physician prescribed a drug; overridden safety alerts are recorded with the reason."""

    event_type = "medication.prescribed"

    drug_code: DrugCode
    drug_name: NonEmpty
    dose: PositiveDose
    dose_unit: DoseUnit
    route: Route
    frequency: Frequency
    prescriber: UUID
    alerts_overridden: tuple[str, ...] = ()
    override_reason: NonEmpty | None = None
    # The patient's open encounter when it was prescribed (None: none was open).
    encounter_id: UUID | None = None
    # The body weight its per-kg dose limits were checked against (None: the drug has none,
    # or no weight was recorded: an alert says so).
    weight_kg: float | None = Field(default=None, gt=0, le=1000)


class MedicationChanged(Payload):
    """Dose or frequency changed (the envelope carries the reason)."""

    event_type = "medication.changed"

    dose: PositiveDose | None = None
    dose_unit: DoseUnit | None = None
    frequency: Frequency | None = None
    alerts_overridden: tuple[str, ...] = ()
    override_reason: NonEmpty | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> MedicationChanged:
        if self.dose is None and self.dose_unit is None and self.frequency is None:
            raise ValueError("a medication change must set dose, dose_unit or frequency")
        return self


class MedicationDiscontinued(Payload):
    """The medication order was stopped (the envelope carries the reason)."""

    event_type = "medication.discontinued"


class MedicationAdministeredV1(Payload):
    """A nurse gave a dose (before non-standard administrations needed a reason)."""

    event_type = "medication.administered"
    schema_version = 1

    administration_id: UUID
    dose: PositiveDose
    dose_unit: DoseUnit
    route: Route
    administered_at: datetime


class MedicationAdministered(Payload):
    """A nurse gave a dose; ``override_reason`` says why a non-standard one was given.

    Non-standard: the order was discontinued, rejected by pharmacy or not yet verified, or
    the dose differs from the ordered one. Version 1 events upcast with none (null).
    """

    event_type = "medication.administered"
    schema_version = 2

    administration_id: UUID
    dose: PositiveDose
    dose_unit: DoseUnit
    route: Route
    administered_at: datetime
    override_reason: Note | None = None


class PharmacyVerified(Payload):
    """A pharmacist verified the prescription or change at ``order_version``."""

    event_type = "pharmacy.verified"

    item_id: UUID
    order_version: int = Field(ge=1)


class PharmacyRejected(Payload):
    """A pharmacist rejected the prescription or change (the envelope carries the reason)."""

    event_type = "pharmacy.rejected"

    item_id: UUID
    order_version: int = Field(ge=1)
