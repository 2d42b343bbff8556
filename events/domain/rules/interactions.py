"""Drug-drug interactions and duplicate therapy against a patient's other active drugs.

The knowledge lives in ``events/reference/interactions.json`` with a source per pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from events.domain.rules.medications import drug, drug_by_name
from events.domain.rules.reference import DrugInfo


@dataclass(frozen=True)
class InteractionRule:
    """Two drug classes that interact, how badly, and where that is written."""

    a: str
    b: str
    severity: str
    effect: str
    source: str


@cache
def _data() -> dict[str, Any]:
    text = resources.files("events.domain").joinpath("reference/interactions.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def interaction_rules() -> tuple[InteractionRule, ...]:
    return tuple(
        InteractionRule(p["a"], p["b"], p["severity"], p["effect"], p["source"])
        for p in _data()["pairs"]
    )


@cache
def duplicate_classes() -> frozenset[str]:
    return frozenset(_data()["duplicate_therapy_classes"])


def _known(code: str, name: str) -> DrugInfo | None:
    return drug(code) or drug_by_name(name)


def interaction_alerts(
    drug_code: str, drug_name: str, others: Iterable[tuple[str, str]]
) -> list[str]:
    """Alerts for the drug against each other active drug (code, name) of the patient."""
    new = _known(drug_code, drug_name)
    if new is None:
        return []
    alerts = []
    for other_code, other_name in others:
        other = _known(other_code, other_name)
        if other is None or other.code == new.code:
            continue
        for rule in interaction_rules():
            forward = rule.a in new.classes and rule.b in other.classes
            backward = rule.b in new.classes and rule.a in other.classes
            if forward or backward:
                alerts.append(
                    f"interaction ({rule.severity}): {new.name} with {other.name}: {rule.effect}"
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
