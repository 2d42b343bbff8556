"""Observation: lab results (``lab_results``) and vital signs, weight and height
(``vital_signs``), one kind over both, so a search by patient, code or date sees all.

Vital signs follow the R4 vital-signs profile (category, LOINC code, UCUM units; blood
pressure as the 85354-9 panel with its systolic and diastolic components)."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import (
    INTERPRETATION,
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
    Row,
    base,
    coding,
    concept,
    instant,
    reference,
    without_none,
)

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
# Each vital: its LOINC code and display, and its specific profile of the vital-signs set.
VITALS = {
    "heart_rate": ("8867-4", "Heart rate", "heartrate"),
    "blood_pressure": ("85354-9", "Blood pressure panel with all children optional", "bp"),
    "diastolic_bp": ("8462-4", "Diastolic blood pressure", None),
    "temperature_c": ("8310-5", "Body temperature", "bodytemp"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "resprate"),
    "spo2": ("2708-6", "Oxygen saturation in Arterial blood", "oxygensat"),
    "body_weight": ("29463-7", "Body weight", "bodyweight"),
    "body_height": ("8302-2", "Body height", "bodyheight"),
}
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
PULSE_OXIMETRY = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
INTERPRETATIONS = {
    "N": "Normal",
    "L": "Low",
    "H": "High",
    "LL": "Critical low",
    "HH": "Critical high",
}

_VITAL_CODE = (
    "CASE v.vital "
    + " ".join(f"WHEN '{name}' THEN '{code}'" for name, (code, _, _) in VITALS.items())
    + " END"
)
# One row shape for both tables (UNION ALL): lab columns are null for vitals and back.
SOURCE = (
    "SELECT r.result_id AS id, r.patient_id, r.recorded_at AS last_updated, "  # noqa: S608 - constants, no input
    f"'{LOINC}'::text AS code_system, r.code, r.observed_at AS effective, "
    "CASE WHEN r.amended AND r.status = 'final' THEN 'amended' ELSE r.status END AS status, "
    "'laboratory'::text AS category, r.order_id, r.name, r.value, r.comparator, r.value_text, "
    "r.value_type, r.unit, r.reference_low, r.reference_high, r.flag, r.amend_reason, "
    "NULL::text AS vital, NULL::float8 AS diastolic, NULL::text AS diastolic_flag "
    "FROM lab_results r "
    "UNION ALL "
    "SELECT v.observation_id, v.patient_id, v.recorded_at, "
    f"'{LOINC}'::text, {_VITAL_CODE}, v.measured_at, 'final'::text, 'vital-signs'::text, "
    "NULL::uuid, NULL::text, v.value, NULL::text, NULL::text, 'numeric'::text, v.unit, "
    "NULL::float8, NULL::float8, v.flag, NULL::text, v.vital, v.diastolic, v.diastolic_flag "
    "FROM vital_signs v"
)


def _quantity(value: float, unit: str | None, comparator: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if comparator:
        quantity["comparator"] = comparator
    if unit:
        quantity.update(unit=unit, system=UCUM, code=unit)
    return quantity


def _interpretation(flag: str | None) -> list[dict[str, Any]] | None:
    if flag not in INTERPRETATIONS:
        return None
    return [{"coding": [coding(INTERPRETATION, flag, INTERPRETATIONS[flag])]}]


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [coding(OBSERVATION_CATEGORY, code, display)]}]


def _common(row: Row, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        **base("Observation", row, profiles),
        "status": row["status"],
        "subject": reference("Patient", row["patient_id"]),
        "effectiveDateTime": instant(row["effective"]),
    }


def _lab(row: Row) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if row["value_type"] == "numeric" and row["value"] is not None:
        value["valueQuantity"] = _quantity(row["value"], row["unit"], row["comparator"])
    elif row["value_text"] is not None:
        value["valueString"] = row["value_text"]
    bounds = without_none(
        {
            "low": _quantity(row["reference_low"], row["unit"])
            if row["reference_low"] is not None
            else None,
            "high": _quantity(row["reference_high"], row["unit"])
            if row["reference_high"] is not None
            else None,
        }
    )
    return without_none(
        {
            **_common(row),
            "basedOn": [reference("ServiceRequest", row["order_id"])],
            "category": _category("laboratory", "Laboratory"),
            "code": concept(LOINC, row["code"], row["name"]),
            **value,
            "interpretation": _interpretation(row["flag"]),
            "referenceRange": [bounds] if bounds else None,
            "note": [{"text": f"amended: {row['amend_reason']}"}] if row["amend_reason"] else None,
        }
    )


def _vital(row: Row) -> dict[str, Any]:
    code, display, profile = VITALS[row["vital"]]
    profiles = (VITAL_SIGNS, *((PROFILE + profile,) if profile else ()))
    measured: dict[str, Any] = {}
    codings = [coding(LOINC, code, display)]
    if row["vital"] == "blood_pressure":
        parts = [
            (SYSTOLIC, row["value"], row["flag"]),
            (DIASTOLIC, row["diastolic"], row["diastolic_flag"]),
        ]
        measured["component"] = [
            without_none(
                {
                    "code": {"coding": [coding(LOINC, *names)], "text": names[1]},
                    "valueQuantity": _quantity(value, row["unit"]),
                    "interpretation": _interpretation(flag),
                }
            )
            for names, value, flag in parts
            if value is not None
        ]
    else:
        if row["vital"] == "spo2":
            codings.append(coding(LOINC, *PULSE_OXIMETRY))
        measured["valueQuantity"] = _quantity(row["value"], row["unit"])
        measured["interpretation"] = _interpretation(row["flag"])
    return without_none(
        {
            **_common(row, profiles),
            "category": _category("vital-signs", "Vital Signs"),
            "code": {"coding": codings, "text": display},
            **measured,
        }
    )


def to_observation(row: Row) -> dict[str, Any]:
    return _lab(row) if row["vital"] is None else _vital(row)


OBSERVATION = Kind(
    name="Observation",
    source=SOURCE,
    to_resource=to_observation,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": Param("token", ("code_system", "code"), "LOINC code"),
        "category": Param("token", ("category",), "laboratory | vital-signs"),
        "date": Param("date", ("effective",), "when it was observed or measured"),
        "status": Param("token", ("status",), "preliminary | final | amended | corrected"),
    },
    profiles=(VITAL_SIGNS,),
)
