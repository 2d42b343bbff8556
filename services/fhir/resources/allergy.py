"""AllergyIntolerance from ``allergies``: clinical and verification status, criticality."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import (
    RXNORM,
    SUBSTANCE_SYSTEM,
    Row,
    base,
    concept,
    instant,
    reference,
    without_none,
)

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

SOURCE = (
    "SELECT a.allergy_id AS id, a.patient_id, "
    "GREATEST(a.recorded_at, a.status_changed_at, a.refuted_at) AS last_updated, "
    "CASE WHEN a.status = 'refuted' THEN NULL ELSE a.status END AS clinical_status, "
    "CASE WHEN a.status = 'refuted' THEN 'refuted' ELSE 'confirmed' END AS "
    "verification_status, a.substance, a.substance_code, a.reaction, a.severity, "
    "a.criticality, a.recorded_at, a.status_reason FROM allergies a"
)


def to_allergy(row: Row) -> dict[str, Any]:
    code = row["substance_code"]
    system = RXNORM if code and code.isdigit() else SUBSTANCE_SYSTEM
    clinical = row["clinical_status"]
    return without_none(
        {
            **base("AllergyIntolerance", row),
            # a refuted allergy has no clinical status (FHIR's rule ait-2)
            "clinicalStatus": concept(CLINICAL, clinical) if clinical else None,
            "verificationStatus": concept(VERIFICATION, row["verification_status"]),
            "criticality": row["criticality"],
            "code": concept(system, code, row["substance"]),
            "patient": reference("Patient", row["patient_id"]),
            "recordedDate": instant(row["recorded_at"]),
            "reaction": [
                {"manifestation": [{"text": row["reaction"]}], "severity": row["severity"]}
            ],
            "note": [{"text": row["status_reason"]}] if row["status_reason"] else None,
        }
    )


ALLERGY = Kind(
    name="AllergyIntolerance",
    source=SOURCE,
    to_resource=to_allergy,
    params={
        "patient": PATIENT,
        "code": Param("token", ("substance_code",), "the substance's code"),
        "clinical-status": Param("token", ("clinical_status",), "active | inactive"),
        "verification-status": Param("token", ("verification_status",), "confirmed | refuted"),
        "criticality": Param("token", ("criticality",), "low | high | unable-to-assess"),
        "date": Param("date", ("recorded_at",), "when it was recorded"),
    },
)
