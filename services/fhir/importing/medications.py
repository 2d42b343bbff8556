"""MedicationRequest → ``Prescribe`` (then ``DiscontinueMedication`` when it has ended).

The RxNorm clinical drug is screened as its ingredient (``rxnorm.json``). A drug the mapping
lacks keeps its own code and name: the prescription then carries the "not screened" note
of the medication rules, visibly. The dose is the drug's strength times the dose quantity
in units of it (Synthea sends "1" tablet); the frequency comes from the timing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from events.commands.medications import Prescribe
from events.domain.rules.rxnorm import clinical_drug
from services.fhir.importing.fields import RXNORM, Unmappable, code_in, display
from services.fhir.importing.reader import Resource

ENDED = frozenset({"stopped", "completed"})
TAKEN = frozenset({"active", "on-hold"}) | ENDED
INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(MG|MCG|G|MEQ|ML|UNT)\b", re.IGNORECASE)
_UNITS = {"mg": "mg", "mcg": "mcg", "g": "g", "meq": "meq", "ml": "mL", "unt": "units"}
_ROUTES = {
    "oral": "oral",
    "sublingual": "sublingual",
    "rectal": "rectal",
    "topical": "topical",
    "transdermal": "transdermal",
    "inhal": "inhaled",
    "injectable": "iv",
}
PER_DAY = {1: "daily", 2: "bid", 3: "tid", 4: "qid"}
HOURS = {"h": 1, "d": 24}


@dataclass(frozen=True)
class Prescription:
    """What a MedicationRequest asks for, and the status to stop it with (None: active)."""

    command: Prescribe
    ended_as: str | None


def _from_name(name: str) -> tuple[float, str, str]:
    """Strength, unit and route read off an RxNorm name ("Foo 10 MG Oral Tablet")."""
    found = _STRENGTH.search(name)
    if found is None:
        raise Unmappable("the drug is not in rxnorm.json and its name states no strength")
    lowered = name.lower()
    route = next((r for key, r in _ROUTES.items() if key in lowered), None)
    if route is None:
        raise Unmappable("the drug is not in rxnorm.json and its name states no route")
    return float(found.group(1)), _UNITS[found.group(2).lower()], route


def _dosage(resource: Resource) -> tuple[float, str]:
    """(number of units of the drug per dose, frequency)."""
    dosage = next((d for d in resource.get("dosageInstruction") or [] if isinstance(d, dict)), None)
    if dosage is None:
        return 1.0, "prn"  # no dosage stated: as needed, its daily total is not screened
    amount = 1.0
    for rate in dosage.get("doseAndRate") or []:
        dose = rate.get("doseQuantity") if isinstance(rate, dict) else None
        if isinstance(dose, dict) and isinstance(dose.get("value"), int | float):
            amount = float(dose["value"])
    return amount, _frequency(dosage)


def _frequency(dosage: dict[str, Any]) -> str:
    as_needed = bool(dosage.get("asNeededBoolean"))
    timing = dosage.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    if not isinstance(repeat, dict):
        return "prn" if as_needed else "once"
    times = int(repeat.get("frequency", 1))
    period = float(repeat.get("period", 1))
    unit = repeat.get("periodUnit")
    if unit == "wk" and times == 1 and period == 1:
        scheduled = "weekly"
    elif unit in HOURS and times > 0:
        hours = period * HOURS[unit] / times
        per_day = 24 / hours
        if hours == 24 or per_day in PER_DAY:
            scheduled = PER_DAY[int(per_day)]
        elif hours.is_integer() and 1 <= hours <= 99:
            scheduled = f"q{int(hours)}h"
        else:
            raise Unmappable(f"a timing of {times} per {period:g} {unit} is not a frequency")
    else:
        raise Unmappable(f"a timing period unit {unit!r} is not a frequency")
    return f"{scheduled} prn" if as_needed and scheduled.startswith("q") else scheduled


def prescription(resource: Resource, patient_id: UUID) -> Prescription:
    """The prescription a MedicationRequest describes, or ``Unmappable``."""
    status, intent = resource.get("status"), resource.get("intent")
    if status not in TAKEN:
        raise Unmappable(f"a MedicationRequest with status {status!r} was never in effect")
    if intent not in INTENTS:
        raise Unmappable(f"a MedicationRequest with intent {intent!r} is not an order")
    concept = resource.get("medicationCodeableConcept")
    code = code_in(concept, RXNORM)
    if code is None:
        raise Unmappable("a MedicationRequest without an RxNorm medicationCodeableConcept")
    name = display(concept, code)
    units, frequency = _dosage(resource)
    known = clinical_drug(code)
    if known is not None:
        drug_code, drug_name = known.ingredient, known.ingredient_name
        strength, unit, route = known.strength, known.strength_unit, known.route
    else:
        drug_code, drug_name = code, name
        strength, unit, route = _from_name(name)
    command = Prescribe(
        patient_id, drug_code, drug_name, round(strength * units, 6), unit, route, frequency
    )
    return Prescription(command, str(status) if status in ENDED else None)
