"""Medication safety alerts: maximum single dose, allergy (same substance or cross-reacting).

What the reference data cannot screen is said, never passed in silence: ``screening_gaps``
returns "not screened" notes for an unknown drug and for an allergy it cannot map.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from events.domain.errors import ImpossibleValueError
from events.domain.rules.reference import DrugInfo, allergy_rules, drugs, unit_table
from events.domain.rules.units import canonical_unit

__all__ = [
    "NOT_SCREENED",
    "DrugInfo",
    "allergy_alerts",
    "dose_alerts",
    "drug",
    "drug_by_name",
    "screening_gaps",
]

# Every "not screened" note starts with this; such a note is shown, it does not block.
NOT_SCREENED = "not screened: "

# A converted dose this close to the maximum counts as equal to it (not exceeding).
_REL_TOL = 1e-9


def drug(code: str) -> DrugInfo | None:
    """The drug with this RxNorm ingredient RXCUI, or None if the reference data lacks it."""
    return drugs().get(code.strip())


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def drug_by_name(text: str) -> DrugInfo | None:
    """The drug whose name, substance or alias starts ``text`` as whole words (longest wins).

    "Amoxicillin 500 MG Oral Capsule", "Keflex" and "penicillin V potassium" are found;
    "penicillin" alone is not a drug here (it names a class, see ``allergy_classes.json``).
    """
    wanted = _normal(text)
    best: DrugInfo | None = None
    best_length = 0
    for info in drugs().values():
        for candidate in {_normal(info.name), info.substance, *info.aliases}:
            if len(candidate) > best_length and re.match(rf"{re.escape(candidate)}\b", wanted):
                best, best_length = info, len(candidate)
    return best


def _named_class(text: str) -> str | None:
    """The class an allergy text names: the longest alias starting it as whole words."""
    best: str | None = None
    best_length = 0
    for alias, allergy_class in allergy_rules().aliases.items():
        if len(alias) > best_length and re.match(rf"{re.escape(alias)}\b", text):
            best, best_length = allergy_class, len(alias)
    return best


def _convert_dose(value: float, unit: str, target: str, info: DrugInfo) -> float | None:
    if unit == target:
        return value
    if {unit, target} == {"meq", "mmol"}:
        if info.valence is None:
            return None
        return value * info.valence if unit == "mmol" else value / info.valence
    conversions = unit_table().dose_conversions
    if (unit, target) in conversions:
        return conversions[(unit, target)].apply(value)
    if (target, unit) in conversions:
        return value / conversions[(target, unit)].apply(1.0)
    return None


def dose_alerts(drug_code: str, dose: float, dose_unit: str) -> list[str]:
    """Alerts for one dose against the drug's adult maximum single dose.

    No alert for an unknown drug or one without a maximum. A unit that cannot be compared
    with the maximum's unit is an alert too, never a silent pass. An unknown unit spelling
    raises ``UnknownUnitError``; a dose that is not a positive number ``ImpossibleValueError``.
    """
    unit = canonical_unit(dose_unit, field="dose_unit")
    if not (math.isfinite(dose) and dose > 0):
        raise ImpossibleValueError(f"a dose must be a positive number, not {dose:g}", field="dose")
    info = drug(drug_code)
    if info is None or info.max_single_dose is None:
        return []
    maximum = info.max_single_dose
    limit = f"the maximum single dose of {maximum.value:g} {maximum.unit} for {info.name}"
    comparable = _convert_dose(dose, unit, maximum.unit, info)
    if comparable is None:
        return [f"dose unit {unit} cannot be checked against {limit}"]
    if comparable > maximum.value and not math.isclose(comparable, maximum.value, rel_tol=_REL_TOL):
        return [f"dose {dose:g} {unit} exceeds {limit}"]
    return []


def _allergy_reason(
    substance: str,
    substance_code: str | None,
    drug_code: str,
    names: set[str],
    target: DrugInfo | None,
    label: str,
) -> str | None:
    code = substance_code.strip() if substance_code else ""
    text = _normal(substance)
    allergen = (drug(code) if code else None) or (drug_by_name(text) if text else None)
    same_code = bool(code) and code in {drug_code.strip(), target.code if target else ""}
    same_drug = allergen is not None and target is not None and allergen.code == target.code
    if same_code or same_drug or text in names:
        return f"same substance as {label}"
    if target is None:
        return None
    named_class = _named_class(text) if allergen is None else None
    allergy_classes = set(allergen.classes) if allergen else set()
    reacting: set[str] = set()
    if named_class is not None:
        allergy_classes.add(named_class)
        reacting.add(named_class)
        reacting |= allergy_rules().unspecified_flags.get(named_class, frozenset())
    # Rules read both ways: A reacts with B means an allergy to B also flags A.
    for rule in allergy_rules().rules.values():
        if rule.allergy_class in allergy_classes:
            reacting |= rule.reacts_with
        if rule.reacts_with & allergy_classes:
            reacting.add(rule.allergy_class)
    shared = sorted(target.classes & reacting)
    if shared:
        return f"{label} is in the cross-reacting class {shared[0]}"
    return None


def allergy_alerts(
    drug_code: str, drug_name: str, allergies: Iterable[tuple[str, str | None]]
) -> list[str]:
    """Alerts for giving the drug to a patient with these allergies (substance text, code).

    An allergy alerts when its code is the drug's code, its text is the drug's substance or
    name (case-insensitive), or its substance or class cross-reacts with one of the drug's
    classes (``allergy_classes.json``). A drug code the reference data lacks is looked up by
    its name, so product codes still get class checks.
    """
    target = drug(drug_code) or drug_by_name(drug_name)
    names = {_normal(drug_name)} - {""}
    if target is not None:
        names |= {_normal(target.name), target.substance}
    label = target.name if target is not None else drug_name.strip()
    alerts: list[str] = []
    for substance, substance_code in allergies:
        reason = _allergy_reason(substance, substance_code, drug_code, names, target, label)
        alert = f"allergy to {substance.strip() or substance_code}: {reason}"
        if reason is not None and alert not in alerts:
            alerts.append(alert)
    return alerts


def _allergen_known(substance: str, substance_code: str | None) -> bool:
    code = substance_code.strip() if substance_code else ""
    text = _normal(substance)
    if code and drug(code) is not None:
        return True
    return bool(text) and (drug_by_name(text) is not None or _named_class(text) is not None)


def screening_gaps(
    drug_code: str, drug_name: str, allergies: Iterable[tuple[str, str | None]]
) -> list[str]:
    """ "Not screened" notes: the drug, or an allergy, the reference data cannot map.

    Such a drug gets no dose, class-allergy or interaction check, and such an allergy no
    cross-reactivity check (only an exact code or name match). The notes are to be shown with
    the order; they do not ask for an override reason.
    """
    notes: list[str] = []
    if drug(drug_code) is None and drug_by_name(drug_name) is None:
        notes.append(
            f"{NOT_SCREENED}drug {drug_code.strip()} ({drug_name.strip()}) "
            "is not in the reference data"
        )
    for substance, substance_code in allergies:
        if not _allergen_known(substance, substance_code):
            shown = substance.strip() or (substance_code or "").strip()
            code = f" ({substance_code.strip()})" if substance_code and substance.strip() else ""
            note = f"{NOT_SCREENED}allergy to {shown}{code} is not in the reference data"
            if note not in notes:
                notes.append(note)
    return notes
