"""AuditEvent from the access log: every read of patient data, break-glass and refusal.

Shaped after the IHE Basic Audit Log Patterns (BALP) where they fit: a read is a RESTful
``read`` of a patient record (DICOM 110110 "Patient Record", action R), a break-glass an
emergency-access grant (v3 ``BTG`` purpose), a refusal a failed access (outcome 4, with the
reason and the route template). The user is the requesting agent, the backbone the
observer, the patient an entity with the "patient" object role. Compliance reads these; they
are not part of ``$everything`` or bulk export (``KINDS`` does not list this kind)."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import Row, coding, instant, reference, without_none

DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
USER_SYSTEM = "urn:backbone:user"
SECTION_SYSTEM = "urn:backbone:chart-section"
# Purposes of use as the API takes them, to their v3 PurposeOfUse codes where one fits.
PURPOSES = {
    "treatment": "TREAT",
    "emergency": "ETREAT",
    "payment": "HPAYMT",
    "operations": "HOPERAT",
    "audit": "HSYSADMIN",
    "research": "HRESCH",
}

# A refused request's HTTP method as a RESTful interaction and an AuditEvent action.
BY_METHOD = {
    "GET": ("read", "R"),
    "POST": ("create", "C"),
    "PUT": ("update", "U"),
    "PATCH": ("patch", "U"),
    "DELETE": ("delete", "D"),
}

SOURCE = (
    "SELECT a.event_id AS id, a.patient_id, a.recorded_at AS last_updated, a.user_id, "
    "a.role, a.event_type, a.section, a.purpose, a.break_glass, a.reason, "
    "NULL::text AS method, NULL::text AS route, NULL::integer AS status, "
    "NULL::text AS detail FROM access_audit a "
    "UNION ALL "
    "SELECT d.event_id, d.patient_id, d.recorded_at, d.user_id, d.role, 'access.denied', "
    "NULL, NULL, false, NULL, d.method, d.route, d.status, d.detail FROM access_denials d"
)


def _type(row: Row) -> tuple[dict[str, Any], dict[str, Any], str]:
    """BALP's type, subtype and action for a row."""
    if row["event_type"] == "access.break_glass":
        return (
            coding(DCM, "110113", "Security Alert"),
            coding(ACT_REASON, "BTG", "break the glass"),
            "E",
        )
    if row["event_type"] == "access.denied":
        interaction, action = BY_METHOD.get(str(row["method"]).upper(), ("read", "R"))
        return coding(DCM, "110113", "Security Alert"), coding(RESTFUL, interaction), action
    return coding(DCM, "110110", "Patient Record"), coding(RESTFUL, "read"), "R"


def _purposes(row: Row) -> list[dict[str, Any]] | None:
    found = []
    purpose = row["purpose"]
    if purpose:
        code = PURPOSES.get(purpose)
        found.append(
            {"coding": [coding(ACT_REASON, code)], "text": purpose} if code else {"text": purpose}
        )
    if row["break_glass"]:
        found.append({"coding": [coding(ACT_REASON, "BTG", "break the glass")]})
    return found or None


def _entities(row: Row) -> list[dict[str, Any]] | None:
    entities: list[dict[str, Any]] = []
    if row["patient_id"] is not None:
        details = []
        if row["section"]:
            details.append({"type": "section", "valueString": row["section"]})
        if row["reason"]:
            details.append({"type": "reason", "valueString": row["reason"]})
        entities.append(
            without_none(
                {
                    "what": reference("Patient", row["patient_id"]),
                    "type": coding(ENTITY_TYPE, "1", "Person"),
                    "role": coding(OBJECT_ROLE, "1", "Patient"),
                    "detail": details or None,
                }
            )
        )
    if row["route"]:
        entities.append(
            {
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "description": f"{row['method']} {row['route']}",
            }
        )
    return entities or None


def to_audit_event(row: Row) -> dict[str, Any]:
    kind, subtype, action = _type(row)
    denied = row["event_type"] == "access.denied"
    return without_none(
        {
            "resourceType": "AuditEvent",
            "id": str(row["id"]),
            "meta": {"lastUpdated": instant(row["last_updated"])},
            "type": kind,
            "subtype": [subtype],
            "action": action,
            "recorded": instant(row["last_updated"]),
            "outcome": "4" if denied else "0",
            "outcomeDesc": f"{row['status']}: {row['detail']}" if denied else None,
            "purposeOfEvent": _purposes(row),
            "agent": [
                {
                    "type": {"coding": [coding(PARTICIPATION, "IRCP", "information recipient")]},
                    "role": [{"text": row["role"]}],
                    "who": {"identifier": {"system": USER_SYSTEM, "value": str(row["user_id"])}},
                    "requestor": True,
                }
            ],
            "source": {
                "observer": {"display": "clinical-backbone"},
                "type": [coding(SOURCE_TYPE, "4", "Application Server")],
            },
            "entity": _entities(row),
        }
    )


AUDIT_EVENT = Kind(
    name="AuditEvent",
    source=SOURCE,
    to_resource=to_audit_event,
    params={
        "patient": PATIENT,
        "agent": Param("reference", ("user_id",), "who accessed it (a user id)", "Practitioner"),
        "date": Param("date", ("last_updated",), "when it was recorded"),
    },
)
