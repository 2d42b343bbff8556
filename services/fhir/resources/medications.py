"""MedicationRequest from ``medication_orders``, MedicationAdministration from the doses
given in ``medication_history`` (one per ``medication.administered`` event)."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import (
    RXNORM,
    UCUM,
    Row,
    base,
    concept,
    instant,
    reference,
    without_none,
)

# Our dose units as UCUM codes (units: international units).
UCUM_UNITS = {
    "mg": "mg",
    "g": "g",
    "mcg": "ug",
    "units": "[iU]",
    "mL": "mL",
    "meq": "meq",
    "mmol": "mmol",
}

REQUEST_SOURCE = (
    "SELECT m.medication_id AS id, m.patient_id, m.updated_at AS last_updated, "  # noqa: S608 - constants, no input
    f"'{RXNORM}'::text AS code_system, m.drug_code AS code, m.drug_name, m.dose, m.dose_unit, "
    "m.route, m.frequency, m.prescriber, m.verification, m.prescribed_at, m.encounter_id, "
    "CASE m.status WHEN 'discontinued' THEN 'stopped' ELSE m.status END AS status "
    "FROM medication_orders m"
)
ADMINISTRATION_SOURCE = (
    "SELECT h.event_id AS id, h.patient_id, h.recorded_at AS last_updated, "  # noqa: S608 - constants, no input
    f"'{RXNORM}'::text AS code_system, m.drug_code AS code, m.drug_name, h.medication_id, "
    "'completed'::text AS status, (h.details->>'administered_at')::timestamptz AS effective, "
    "(h.details->>'dose')::float8 AS dose, h.details->>'dose_unit' AS dose_unit, "
    "h.details->>'route' AS route, h.details->>'override_reason' AS override_reason, "
    "h.actor_user_id FROM medication_history h "
    "JOIN medication_orders m ON m.medication_id = h.medication_id "
    "WHERE h.event_type = 'medication.administered'"
)


def _dose(value: float, unit: str) -> dict[str, Any]:
    code = UCUM_UNITS.get(unit)
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if code:
        quantity.update(system=UCUM, code=code)
    return quantity


def _drug(row: Row) -> dict[str, Any]:
    return concept(RXNORM, row["code"], row["drug_name"])


def to_medication_request(row: Row) -> dict[str, Any]:
    dose = _dose(row["dose"], row["dose_unit"])
    text = f"{row['dose']:g} {row['dose_unit']} {row['route']} {row['frequency']}"
    return without_none(
        {
            **base("MedicationRequest", row),
            "status": row["status"],
            "intent": "order",
            "medicationCodeableConcept": _drug(row),
            "subject": reference("Patient", row["patient_id"]),
            "encounter": reference("Encounter", row["encounter_id"])
            if row["encounter_id"]
            else None,
            "authoredOn": instant(row["prescribed_at"]),
            "requester": reference("Practitioner", row["prescriber"]),
            "dosageInstruction": [
                {
                    "text": text,
                    "timing": {"code": {"text": row["frequency"]}},
                    "route": {"text": row["route"]},
                    "doseAndRate": [{"doseQuantity": dose}],
                }
            ],
            "note": [{"text": f"pharmacy verification: {row['verification']}"}],
        }
    )


def to_medication_administration(row: Row) -> dict[str, Any]:
    return without_none(
        {
            **base("MedicationAdministration", row),
            "status": row["status"],
            "medicationCodeableConcept": _drug(row),
            "subject": reference("Patient", row["patient_id"]),
            "effectiveDateTime": instant(row["effective"]),
            "performer": [{"actor": reference("Practitioner", row["actor_user_id"])}],
            "request": reference("MedicationRequest", row["medication_id"]),
            "dosage": {
                "route": {"text": row["route"]},
                "dose": _dose(row["dose"], row["dose_unit"]),
            },
            "note": [{"text": f"given outside the order: {row['override_reason']}"}]
            if row["override_reason"]
            else None,
        }
    )


CODE = Param("token", ("code_system", "code"), "the drug's RxNorm code")
MEDICATION_REQUEST = Kind(
    name="MedicationRequest",
    source=REQUEST_SOURCE,
    to_resource=to_medication_request,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": CODE,
        "status": Param("token", ("status",), "active | stopped"),
        "authoredon": Param("date", ("prescribed_at",), "when it was prescribed"),
    },
)
MEDICATION_ADMINISTRATION = Kind(
    name="MedicationAdministration",
    source=ADMINISTRATION_SOURCE,
    to_resource=to_medication_administration,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": CODE,
        "status": Param("token", ("status",), "completed"),
        "effective-time": Param("date", ("effective",), "when the dose was given"),
    },
)
