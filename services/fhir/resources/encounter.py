"""Encounter from ``encounters``: class, period, the ward, the attending and consultants."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import (
    V3_ACT_CODE,
    Row,
    base,
    coding,
    instant,
    reference,
    without_none,
)

CLASSES = {
    "inpatient": ("IMP", "inpatient encounter"),
    "outpatient": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
}
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# last_updated: the encounters table keeps the start and end; a transfer in between is
# dated by neither, so meta.lastUpdated is the later of the two.
SOURCE = (
    "SELECT e.encounter_id AS id, e.patient_id, GREATEST(e.started_at, e.ended_at) AS "
    "last_updated, CASE WHEN e.ended_at IS NULL THEN 'in-progress' ELSE 'finished' END AS "
    "status, CASE e.encounter_class WHEN 'inpatient' THEN 'IMP' WHEN 'outpatient' THEN 'AMB' "
    "ELSE 'EMER' END AS class_code, e.encounter_class, e.ward, e.room, e.bed, e.attending_id, "
    "e.consulting, e.started_at, e.ended_at, e.disposition FROM encounters e"
)


def _where(row: Row) -> str:
    parts = [row["ward"], row["room"] and f"room {row['room']}", row["bed"] and f"bed {row['bed']}"]
    return ", ".join(p for p in parts if p)


def _participant(kind: str, who: Any) -> dict[str, Any]:
    return {
        "type": [{"coding": [coding(PARTICIPATION, kind)]}],
        "individual": reference("Practitioner", who),
    }


def to_encounter(row: Row) -> dict[str, Any]:
    code, display = CLASSES[row["encounter_class"]]
    period = without_none(
        {
            "start": instant(row["started_at"]),
            "end": row["ended_at"] and instant(row["ended_at"]),
        }
    )
    disposition = row["disposition"]
    return without_none(
        {
            **base("Encounter", row),
            "status": row["status"],
            "class": coding(V3_ACT_CODE, code, display),
            "subject": reference("Patient", row["patient_id"]),
            "participant": [
                _participant("ATND", row["attending_id"]),
                *(_participant("CON", c) for c in row["consulting"] or []),
            ],
            "period": period,
            "hospitalization": {"dischargeDisposition": {"text": disposition}}
            if disposition
            else None,
            "location": [{"location": {"display": _where(row)}}],
        }
    )


ENCOUNTER = Kind(
    name="Encounter",
    source=SOURCE,
    to_resource=to_encounter,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "date": Param("date", ("started_at",), "when the encounter started"),
        "status": Param("token", ("status",), "in-progress | finished"),
        "class": Param("token", ("class_code",), "IMP | AMB | EMER (v3 ActCode)"),
    },
)
