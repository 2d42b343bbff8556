"""Access-log rows as AuditEvents, after the IHE Basic Audit Log Patterns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from services.fhir.resources.audit_event import AUDIT_EVENT, to_audit_event

AT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def row(**values: Any) -> dict[str, Any]:
    base = {
        "id": uuid4(),
        "patient_id": uuid4(),
        "last_updated": AT,
        "user_id": uuid4(),
        "role": "physician",
        "event_type": "chart.viewed",
        "section": "fhir",
        "purpose": "treatment",
        "break_glass": False,
        "reason": None,
        "method": None,
        "route": None,
        "status": None,
        "detail": None,
    }
    return {**base, **values}


def test_a_read_is_a_patient_record_read_by_its_user_for_its_purpose() -> None:
    read = row()
    event = to_audit_event(read)

    assert event["type"]["code"] == "110110" and event["action"] == "R"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    ]
    assert event["outcome"] == "0" and event["recorded"] == AT.isoformat()
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    (agent,) = event["agent"]
    assert agent["requestor"] is True and agent["role"] == [{"text": "physician"}]
    assert agent["who"]["identifier"]["value"] == str(read["user_id"])
    (patient,) = event["entity"]
    assert patient["what"] == {"reference": f"Patient/{read['patient_id']}"}
    assert patient["detail"] == [{"type": "section", "valueString": "fhir"}]


def test_a_break_glass_is_a_security_alert_with_the_btg_reason() -> None:
    event = to_audit_event(
        row(
            event_type="access.break_glass",
            section=None,
            purpose=None,
            break_glass=True,
            reason="unconscious",
        )
    )

    assert event["type"]["code"] == "110113" and event["subtype"][0]["code"] == "BTG"
    assert event["purposeOfEvent"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": "BTG",
                    "display": "break the glass",
                }
            ]
        }
    ]
    assert {"type": "reason", "valueString": "unconscious"} in event["entity"][0]["detail"]


def test_a_refusal_is_a_failed_access_naming_the_route_and_why() -> None:
    event = to_audit_event(
        row(
            event_type="access.denied",
            section=None,
            purpose=None,
            method="POST",
            route="/fhir/R4",
            status=403,
            detail="not on the care team",
            patient_id=None,
        )
    )

    assert event["outcome"] == "4" and event["outcomeDesc"] == "403: not on the care team"
    assert event["action"] == "C" and event["subtype"][0]["code"] == "create"
    assert event["entity"] == [
        {
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "2",
                "display": "System Object",
            },
            "description": "POST /fhir/R4",
        }
    ]
    assert "purposeOfEvent" not in event


def test_audit_events_are_searched_by_patient_agent_and_date() -> None:
    assert set(AUDIT_EVENT.params) == {"patient", "agent", "date"}
    assert AUDIT_EVENT.params["agent"].target == "Practitioner"
    assert not AUDIT_EVENT.params["agent"].scopes_patients
