"""Drug-drug interactions and duplicate therapy against a patient's other active drugs.

The knowledge lives in ``events/domain/reference/interactions.json``: each pair names two drug
classes or substances, a severity, the effect, the management shown to pharmacy and its source.
A drug the reference data does not know is not checked here; ``screening_gaps`` of
``events.domain.rules.medications`` says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from events.domain.rules.medications import drug, drug_by_name
from events.domain.rules.reference import DrugInfo, ReferenceDataError

__all__ = [
    "InteractionRule",
    "duplicate_classes",
    "duplicate_therapy_alerts",
    "interaction_alerts",
    "interaction_rules",
]


@dataclass(frozen=True)
class InteractionRule:
    """Two drug classes (or substances) that interact, how badly, what to do, and the source.

    ``onc_pair`` names the pair of the ONC high-priority list (Phansalkar et al., JAMIA 2012)
    the rule implements, or is None for a rule from labels alone.
    """

    a: str
    b: str
    severity: str
    effect: str
    management: str
    source: str
    onc_pair: str | None = None

    def matches(self, new: DrugInfo, other: DrugInfo) -> bool:
        """Whether the rule applies to this pair of drugs, in either order."""
        new_terms = new.classes | {new.substance}
        other_terms = other.classes | {other.substance}
        forward = self.a in new_terms and self.b in other_terms
        return forward or (self.b in new_terms and self.a in other_terms)


@cache
def _data() -> dict[str, Any]:
    text = resources.files("events.domain").joinpath("reference/interactions.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


_FIELDS = ("a", "b", "severity", "effect", "management", "source")


@cache
def interaction_rules() -> tuple[InteractionRule, ...]:
    """The interaction pairs; ``ReferenceDataError`` if one lacks a field or its source."""
    rules = []
    for index, pair in enumerate(_data()["pairs"]):
        values = [pair.get(field) for field in _FIELDS]
        if not all(isinstance(value, str) and value.strip() for value in values):
            raise ReferenceDataError(f"interactions.json pairs[{index}]: give {', '.join(_FIELDS)}")
        onc_pair = pair.get("onc_pair")
        if onc_pair is not None and not (isinstance(onc_pair, str) and onc_pair.strip()):
            raise ReferenceDataError(f"interactions.json pairs[{index}]: onc_pair must be text")
        a, b, severity, effect, management, source = (str(value) for value in values)
        rules.append(InteractionRule(a, b, severity, effect, management, source, onc_pair))
    return tuple(rules)


@cache
def duplicate_classes() -> frozenset[str]:
    """The classes in which two active drugs count as duplicate therapy."""
    return frozenset(_data()["duplicate_therapy_classes"])


def _known(code: str, name: str) -> DrugInfo | None:
    return drug(code) or drug_by_name(name)


def interaction_alerts(
    drug_code: str, drug_name: str, others: Iterable[tuple[str, str]]
) -> list[str]:
    """Alerts for the drug against each other active drug (code, name) of the patient.

    One alert per other drug: the first matching pair of ``interactions.json`` wins.
    """
    new = _known(drug_code, drug_name)
    if new is None:
        return []
    alerts = []
    for other_code, other_name in others:
        other = _known(other_code, other_name)
        if other is None or other.code == new.code:
            continue
        for rule in interaction_rules():
            if rule.matches(new, other):
                alerts.append(
                    f"interaction ({rule.severity}): {new.name} with {other.name}: "
                    f"{rule.effect}; management: {rule.management} [source: {rule.source}]"
                )
                break
    return alerts


def duplicate_therapy_alerts(
    drug_code: str, drug_name: str, others: Iterable[tuple[str, str]]
) -> list[str]:
    """Alerts when another active drug is in the same therapeutic class (or is the same drug)."""
    new = _known(drug_code, drug_name)
    if new is None:
        return []
    alerts = []
    for other_code, other_name in others:
        other = _known(other_code, other_name)
        if other is None:
            continue
        shared = sorted((new.classes & other.classes) & duplicate_classes())
        if other.code == new.code:
            alerts.append(f"duplicate therapy: {new.name} is already active")
        elif shared:
            alerts.append(f"duplicate therapy: {new.name} and {other.name} are both {shared[0]}")
    return alerts
