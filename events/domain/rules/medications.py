"""Medication safety alerts: dose limits (single, by route, per 24 h, by age) and allergy
(same substance or cross-reacting).

What the reference data cannot screen is said, never passed in silence: ``screening_gaps``
returns "not screened" notes for an unknown drug and for an allergy it cannot map.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from events.domain.errors import ImpossibleValueError
from events.domain.rules.dose_limits import (
    age_limits_unscreened,
    applicable_limits,
    doses_per_day,
)
from events.domain.rules.reference import Dose, DrugInfo, allergy_rules, drugs, unit_table
from events.domain.rules.units import canonical_unit

__all__ = [
    "NOT_SCREENED",
    "DrugInfo",
    "allergy_alerts",
    "dose_alerts",
    "dose_gaps",
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


def _check(dose: float, unit: str, maximum: Dose, info: DrugInfo, what: str, scope: str) -> str:
    """Empty within ``maximum``; else the alert's end: "exceeds the maximum ..." or why it
    cannot be checked (a unit that does not convert)."""
    limit = f"the maximum {what} of {maximum.value:g} {maximum.unit} for {info.name}{scope}"
    comparable = _convert_dose(dose, unit, maximum.unit, info)
    if comparable is None:
        return f"dose unit {unit} cannot be checked against {limit}"
    if comparable > maximum.value and not math.isclose(comparable, maximum.value, rel_tol=_REL_TOL):
        return f"exceeds {limit}"
    return ""


def _alert(found: str, given: str) -> str:
    return found if found.startswith("dose unit") else f"{given} {found}"


def dose_alerts(
    drug_code: str,
    dose: float,
    dose_unit: str,
    *,
    route: str | None = None,
    frequency: str | None = None,
    age: int | None = None,
) -> list[str]:
    """Alerts for one dose against the drug's maximum single dose, by route, per 24 h and age.

    The single dose is checked against the route's own maximum where ``drugs.json`` gives
    one (IV morphine: 10 mg), else the general one; with a ``frequency``, dose x doses per
    24 h (``doses_per_day``) is checked against each daily maximum for the route and
    ``age`` (completed years; citalopram from 60: 20 mg). No alert for an unknown drug or
    one without limits. A unit that cannot be compared with a maximum's unit is an alert
    too, never a silent pass. An unknown unit spelling raises ``UnknownUnitError``; a dose
    that is not a positive number (or an impossible frequency) ``ImpossibleValueError``.
    """
    unit = canonical_unit(dose_unit, field="dose_unit")
    if not (math.isfinite(dose) and dose > 0):
        raise ImpossibleValueError(f"a dose must be a positive number, not {dose:g}", field="dose")
    per_day = doses_per_day(frequency) if frequency is not None else None
    info = drug(drug_code)
    if info is None:
        return []
    limits = applicable_limits(info.code, route, age)
    singles = [(lim.max_single_dose, lim.describe()) for lim in limits if lim.max_single_dose]
    if info.max_single_dose is not None and not any(
        lim.route is not None and lim.max_single_dose for lim in limits
    ):
        singles.insert(0, (info.max_single_dose, ""))
    alerts = []
    for maximum, scope in singles:
        found = _check(dose, unit, maximum, info, "single dose", scope)
        if found:
            alerts.append(_alert(found, f"dose {dose:g} {unit}"))
    if per_day is None:
        return alerts
    total = dose * per_day
    count = f"{per_day} dose{'s' if per_day > 1 else ''} in 24 h"
    for limit in limits:
        if limit.max_daily_dose is not None:
            found = _check(total, unit, limit.max_daily_dose, info, "daily dose", limit.describe())
            if found:
                given = f"daily dose {total:g} {unit} ({dose:g} {unit} {frequency}: {count})"
                alerts.append(_alert(found, given))
    return alerts


def dose_gaps(drug_code: str, frequency: str, route: str | None, age_known: bool) -> list[str]:
    """ "Not screened" notes of the dose checks: a daily maximum a "prn" order without an
    interval cannot be checked against, and age-specific limits when the age is unknown."""
    info = drug(drug_code)
    if info is None:
        return []
    notes = []
    daily = [lim.max_daily_dose for lim in applicable_limits(info.code, route, None)]
    maximum = next((dose for dose in daily if dose is not None), None)
    if maximum is not None and doses_per_day(frequency) is None:
        notes.append(
            f"{NOT_SCREENED}{frequency.strip()} without an interval: the doses given per day "
            f"are not checked against the maximum daily dose of {maximum.value:g} "
            f"{maximum.unit} for {info.name}"
        )
    if not age_known:
        for limit in age_limits_unscreened(info.code, route):
            notes.append(
                f"{NOT_SCREENED}the limit of {info.name}{limit.describe()} without the "
                "patient's age"
            )
    return notes


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
