"""Every projection the backbone keeps, by name."""

from __future__ import annotations

from projections import (
    access_audit,
    lab_results,
    medications,
    orders,
    patient_chart,
    vital_signs,
)
from projections.engine.base import Projection

ALL: tuple[Projection, ...] = (
    patient_chart.PROJECTION,
    medications.PROJECTION,
    orders.PROJECTION,
    lab_results.PROJECTION,
    access_audit.PROJECTION,
    vital_signs.PROJECTION,
)
BY_NAME: dict[str, Projection] = {p.name: p for p in ALL}


def named(name: str) -> Projection:
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise ValueError(f"unknown projection {name!r}; known: {known}") from None
