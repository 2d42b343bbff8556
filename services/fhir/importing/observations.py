"""Observation → vital signs (``RecordVitals``), weight and height (``RecordObservation``),
or a lab result (one analyte of an order's ``ReceiveResults``).

Vital signs follow the FHIR vital-signs profile's LOINC codes; their UCUM units are
converted to the backbone's. BMI and pain scores have no place in the backbone (BMI is
computed from weight and height; a pain score is not a vital sign it records), so they
are reported as not mappable with that reason, as are survey and other categories.
"""

from __future__ import annotations

from uuid import UUID

from events.commands.observations import RecordObservation, RecordVitals
from events.commands.orders import AnalyteInput
from events.domain.errors import ClinicalRuleViolation
from events.domain.rules.results import flag_value, parse_value
from services.fhir.importing.fields import (
    LOINC,
    Unmappable,
    code_in,
    codings,
    display,
    quantity,
)
from services.fhir.importing.reader import Resource

VITAL = {
    "8867-4": "heart_rate",
    "9279-1": "respiratory_rate",
    "8310-5": "temperature_c",
    "2708-6": "spo2",
    "59408-5": "spo2",
}
BP_PANELS = frozenset({"55284-4", "85354-9"})
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
BODY = {"29463-7": "body_weight", "8302-2": "body_height"}
NOT_RECORDED = {
    "39156-5": "BMI (39156-5) is not recorded: the backbone derives it from weight and height",
    "72514-3": "a pain score (72514-3) is not a vital sign the backbone records",
}
# UCUM units the vital signs are sent in, as the unit the backbone stores.
RATE_UNITS = frozenset({"/min", "{beats}/min", "{breaths}/min"})
BODY_UNITS = {
    "kg": "kg",
    "g": "g",
    "[lb_av]": "lb",
    "lb": "lb",
    "cm": "cm",
    "m": "m",
    "[in_i]": "in",
    "in": "in",
}


def category(resource: Resource) -> str | None:
    """The observation's category code (``vital-signs``, ``laboratory``, ...)."""
    for concept in resource.get("category") or []:
        for coding in codings(concept):
            return str(coding["code"])
    return None


def _vital(name: str, value: float, unit: str | None) -> float:
    if name == "temperature_c":
        if unit == "Cel":
            return value
        if unit == "[degF]":
            return round((value - 32) * 5 / 9, 2)
        raise Unmappable(f"a body temperature in {unit!r} (not Cel or [degF])")
    if name == "spo2":
        if unit != "%":
            raise Unmappable(f"an oxygen saturation in {unit!r} (not %)")
        return value
    if unit not in RATE_UNITS:
        raise Unmappable(f"a {name.replace('_', ' ')} in {unit!r} (not /min)")
    return value


def _component(resource: Resource, code: str) -> float | None:
    for part in resource.get("component") or []:
        if isinstance(part, dict) and code_in(part.get("code"), LOINC) == code:
            value, unit = quantity(part.get("valueQuantity"), f"component {code}")
            if unit not in ("mm[Hg]", "mmHg"):
                raise Unmappable(f"a blood pressure in {unit!r} (not mm[Hg])")
            return value
    return None


def vital_command(resource: Resource, patient_id: UUID) -> RecordVitals | RecordObservation:
    """The recording a vital-signs Observation asks for, or ``Unmappable`` saying why."""
    code = code_in(resource.get("code"), LOINC)
    if code in NOT_RECORDED:
        raise Unmappable(NOT_RECORDED[code])
    if code in BP_PANELS:
        systolic, diastolic = _component(resource, SYSTOLIC), _component(resource, DIASTOLIC)
        if systolic is None and diastolic is None:
            raise Unmappable("a blood pressure panel without 8480-6 or 8462-4 components")
        return RecordVitals(patient_id, systolic_bp=systolic, diastolic_bp=diastolic)
    if code in VITAL:
        name = VITAL[code]
        value, unit = quantity(resource.get("valueQuantity"), f"Observation {code}")
        return RecordVitals(patient_id, **{name: _vital(name, value, unit)})
    if code in BODY:
        value, unit = quantity(resource.get("valueQuantity"), f"Observation {code}")
        if unit not in BODY_UNITS:
            raise Unmappable(f"a {BODY[code].replace('_', ' ')} in {unit!r}")
        if BODY[code] == "body_weight":
            return RecordObservation(patient_id, "body_weight", value, BODY_UNITS[unit])
        return RecordObservation(patient_id, "body_height", value, BODY_UNITS[unit])
    raise Unmappable(f"vital sign {code} is not one the backbone records")


def _value(resource: Resource) -> tuple[float | str, str | None]:
    if "valueQuantity" in resource:
        value, unit = quantity(resource["valueQuantity"], "Observation.valueQuantity")
        comparator = resource["valueQuantity"].get("comparator")
        return (f"{comparator}{value:g}" if comparator else value), unit
    if isinstance(resource.get("valueString"), str):
        return resource["valueString"], None
    if "valueCodeableConcept" in resource:
        return display(resource["valueCodeableConcept"], "coded value"), None
    raise Unmappable("a lab Observation without a quantity, string or coded value")


def _range(resource: Resource) -> tuple[float | None, float | None]:
    ranges = [r for r in resource.get("referenceRange") or [] if isinstance(r, dict)]
    if not ranges:
        return None, None
    bounds = []
    for key in ("low", "high"):
        bound = ranges[0].get(key)
        value = bound.get("value") if isinstance(bound, dict) else None
        bounds.append(float(value) if isinstance(value, int | float) else None)
    return bounds[0], bounds[1]


def lab_analyte(resource: Resource) -> AnalyteInput:
    """A laboratory Observation as one analyte, checked as the order would check it (a
    unit or value the backbone refuses makes this one result not mappable, not its order)."""
    code = code_in(resource.get("code"), LOINC)
    if code is None:
        raise Unmappable("a lab Observation without a LOINC code")
    status = resource.get("status")
    if status not in ("final", "amended", "corrected", "preliminary"):
        raise Unmappable(f"a lab Observation with status {status!r} reports no result")
    value, unit = _value(resource)
    low, high = _range(resource)
    try:
        flag_value(code, parse_value(value), unit, low, high)
    except ClinicalRuleViolation as exc:
        raise Unmappable(f"result {code}: {exc}") from None
    analyte_status = "preliminary" if status == "preliminary" else "final"
    return AnalyteInput(
        code, display(resource.get("code"), code), value, unit, low, high, analyte_status
    )
