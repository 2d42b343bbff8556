"""AllergyIntolerance → ``RecordAllergy`` (then inactivated when it is no longer active).

A refuted or entered-in-error allergy is not an allergy the patient has, and is reported
as not mappable. The substance code is kept whatever its system (RxNorm ingredient codes
screen through ``drugs.json``, other systems by the substance's name).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from events.commands.patients import RecordAllergy
from services.fhir.importing.fields import RXNORM, Unmappable, any_code, code_in, display
from services.fhir.importing.reader import Resource

SEVERITIES = frozenset({"mild", "moderate", "severe"})
CRITICALITIES = frozenset({"low", "high", "unable-to-assess"})
NOT_HELD = frozenset({"refuted", "entered-in-error"})
BY_CRITICALITY = {"high": "severe", "low": "mild"}


@dataclass(frozen=True)
class Allergy:
    """What an AllergyIntolerance asks for, and whether to inactivate it afterwards."""

    command: RecordAllergy
    inactive: bool
    severity_assumed: bool = False


def _status(resource: Resource, key: str) -> str | None:
    return any_code(resource.get(key))


def allergy(resource: Resource, patient_id: UUID) -> Allergy:
    """The allergy an AllergyIntolerance records, or ``Unmappable``."""
    verification = _status(resource, "verificationStatus")
    if verification in NOT_HELD:
        raise Unmappable(f"an AllergyIntolerance that is {verification} is not an allergy")
    concept = resource.get("code")
    substance = display(concept, "")
    if not substance:
        raise Unmappable("an AllergyIntolerance without a substance")
    reactions = [r for r in resource.get("reaction") or [] if isinstance(r, dict)]
    first = reactions[0] if reactions else {}
    manifestations = [m for m in first.get("manifestation") or [] if isinstance(m, dict)]
    reaction = display(manifestations[0], "not stated") if manifestations else "not stated"
    criticality = resource.get("criticality")
    # A reaction without a severity: the criticality's, else moderate (the report says so).
    severity = first.get("severity") or BY_CRITICALITY.get(str(criticality))
    guessed = first.get("severity") not in SEVERITIES
    command = RecordAllergy(
        patient_id,
        substance,
        reaction,
        str(severity) if severity in SEVERITIES else "moderate",
        code_in(concept, RXNORM) or any_code(concept),
        str(criticality) if criticality in CRITICALITIES else None,
    )
    clinical = _status(resource, "clinicalStatus")
    return Allergy(command, clinical in ("inactive", "resolved"), guessed)
