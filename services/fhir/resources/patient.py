"""Patient from ``patients``; a record merged into another links ``replaced-by`` it."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import Kind, Param
from services.fhir.resources.coding import MRN_SYSTEM, Row, base, day, reference, without_none

SOURCE = (
    "SELECT p.patient_id AS id, p.patient_id, p.updated_at AS last_updated, "  # noqa: S608 - constants, no input
    f"'{MRN_SYSTEM}'::text AS mrn_system, p.mrn, p.family_name, p.given_names, p.birth_date, "
    "p.sex, m.survivor_id "
    "FROM patients p LEFT JOIN patient_merges m ON m.merged_id = p.patient_id AND m.in_force"
)


def to_patient(row: Row) -> dict[str, Any]:
    resource = base("Patient", row)
    links = []
    if row["survivor_id"] is not None:
        links = [{"other": reference("Patient", row["survivor_id"]), "type": "replaced-by"}]
    return without_none(
        {
            **resource,
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MR",
                            }
                        ]
                    },
                    "system": MRN_SYSTEM,
                    "value": row["mrn"],
                }
            ],
            "active": row["survivor_id"] is None,
            "name": [
                without_none(
                    {
                        "use": "official",
                        "family": row["family_name"],
                        "given": list(row["given_names"] or []),
                    }
                )
            ],
            "gender": row["sex"],  # the backbone's values are FHIR's administrative genders
            "birthDate": day(row["birth_date"]),
            "link": links,
        }
    )


PATIENT = Kind(
    name="Patient",
    source=SOURCE,
    to_resource=to_patient,
    params={
        "identifier": Param("token", ("mrn_system", "mrn"), "the MRN (urn:backbone:mrn)"),
        "family": Param("string", ("family_name",), "family name, starts with, any case"),
        "birthdate": Param("date", ("birth_date",), "date of birth"),
        "gender": Param("token", ("sex",), "male | female | other | unknown"),
    },
    patient_scoped=False,
)
