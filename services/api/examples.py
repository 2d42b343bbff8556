"""Response examples for the OpenAPI document of the read routes."""

from __future__ import annotations

from typing import Any

PATIENT = "3cd8a5de-db88-8359-ac27-c3bde416c5ea"
USER = "826135b8-2d4f-86d5-80f4-d2d537597973"
WHEN = "2026-11-24T09:30:00Z"


def example(value: Any) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose 200 answer looks like ``value``."""
    return {200: {"content": {"application/json": {"example": value}}}}


CHART = {
    "patient": {
        "patient_id": PATIENT,
        "mrn": "MRN-004217",
        "family_name": "Okafor",
        "given_names": ["Ada"],
        "birth_date": "1961-04-02",
        "sex": "female",
    },
    "allergies": [
        {
            "allergy_id": "05739afa-17ca-4013-9105-cdaf39091621",
            "substance": "penicillin",
            "substance_code": None,
            "reaction": "hives",
            "severity": "moderate",
            "criticality": "high",
            "status": "active",
            "status_changed_at": None,
            "recorded_at": WHEN,
        }
    ],
    "allergy_status": "recorded",
    "active_medications": [
        {
            "medication_id": "cc566bce-866d-4e3a-97be-ed650c1b7f1e",
            "drug_code": "29046",
            "drug_name": "lisinopril",
            "dose": 10.0,
            "dose_unit": "mg",
            "route": "oral",
            "frequency": "daily",
            "status": "active",
            "verification": "verified",
            "prescribed_at": WHEN,
        }
    ],
    "pending_orders": [],
    "recent_results": [
        {
            "result_id": "1de96c8b-e3fc-4e8b-9025-9f24c0d43f7e",
            "order_id": "fbfaa334-0e9a-478e-9871-3ce98965cadb",
            "code": "2823-3",
            "name": "Potassium",
            "value": 6.9,
            "comparator": None,
            "value_text": None,
            "value_type": "numeric",
            "status": "final",
            "unit": "mmol/L",
            "reference_low": 3.5,
            "reference_high": 5.1,
            "flag": "HH",
            "previous_value": 4.8,
            "trend": "up",
            "amended": False,
            "original_value": None,
            "original_text": None,
            "observed_at": WHEN,
        },
        {
            "result_id": "5b0f3c1e-8d7a-4f4e-9a55-0c2b8e9d1a77",
            "order_id": "fbfaa334-0e9a-478e-9871-3ce98965cadb",
            "code": "10839-9",
            "name": "Troponin I",
            "value": 0.01,
            "comparator": "<",
            "value_text": "<0.01",
            "value_type": "numeric",
            "status": "preliminary",
            "unit": "ng/mL",
            "reference_low": None,
            "reference_high": 0.04,
            "flag": "N",
            "previous_value": None,
            "trend": None,
            "amended": False,
            "original_value": None,
            "original_text": None,
            "observed_at": WHEN,
        },
    ],
    "latest_vitals": {"heart_rate": {"value": 118.0, "flag": "H", "measured_at": WHEN}},
    "encounter": {
        "encounter_id": "5b0e3c1a-1f7e-4c1d-8a51-2f3d1c9b7e20",
        "class": "inpatient",
        "location": {"ward": "4B", "room": "12", "bed": "2"},
        "attending_id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11",
        "since": WHEN,
    },
    "encounters": [],
}
SEARCH = [CHART["patient"]]
HISTORY = {
    "patient_id": PATIENT,
    "after": 0,
    "page_size": 2,
    "events": [
        {
            "position": 7,
            "event_type": "medication.changed",
            "kind": "change",
            "erased": False,
            "actor": {"user_id": USER, "role": "physician", "on_behalf_of": None},
            "reason": "BP above target",
            "occurred_at": WHEN,
            "recorded_at": WHEN,
            "changes": {"dose": {"before": 10.0, "after": 20.0}},
        },
        {
            "position": 9,
            "event_type": "chart.viewed",
            "kind": "read",
            "erased": False,
            "actor": {"user_id": USER, "role": "nurse", "on_behalf_of": None},
            "reason": None,
            "occurred_at": WHEN,
            "recorded_at": WHEN,
            "changes": None,
        },
    ],
    "next_cursor": 9,
}
ACCESS = [
    {
        "event_id": "ae2a6b2a-3cc4-4585-bbb3-c6f0c896b677",
        "patient_id": PATIENT,
        "user_id": USER,
        "role": "physician",
        "event_type": "chart.viewed",
        "section": "chart",
        "purpose": "ward round",
        "break_glass": False,
        "reason": None,
        "recorded_at": WHEN,
    }
]
ALERTS = [
    {
        "kind": "break_glass",
        "user_id": USER,
        "username": None,
        "patient_id": PATIENT,
        "at": WHEN,
        "detail": "break-glass: unresponsive patient in ED",
    }
]
QUEUE = [
    {
        "item_id": "1b5a5aa8-64de-4b25-876f-d3b38e5e3745",
        "medication_id": "cc566bce-866d-4e3a-97be-ed650c1b7f1e",
        "patient_id": PATIENT,
        "kind": "prescribed",
        "drug_code": "5640",
        "drug_name": "ibuprofen",
        "dose": 400.0,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "tid",
        "prescriber": USER,
        "alerts": ["interaction (major): ibuprofen with warfarin: increased bleeding risk"],
        "created_at": WHEN,
    }
]
INBOX = [
    {
        "item_id": "1de96c8b-e3fc-4e8b-9025-9f24c0d43f7e",
        "order_id": "fbfaa334-0e9a-478e-9871-3ce98965cadb",
        "patient_id": PATIENT,
        "test_name": "Potassium",
        "code": "2823-3",
        "name": "Potassium",
        "value": 6.9,
        "comparator": None,
        "value_text": None,
        "unit": "mmol/L",
        "flag": "HH",
        "status": "final",
        "observed_at": WHEN,
        "renotified": False,
        "escalated": False,
        "escalated_to_you": False,
    }
]
ME = {"user_id": USER, "username": "physician", "role": "physician"}
HEALTH = {"status": "ok"}
READY = {
    "ready": True,
    "checks": {
        "store": {"up": True},
        "kafka": {"up": True},
        "projections": {"patient_chart": {"lag": 0, "up": True}},
        "relay": {"lag": 0, "state": "running"},
    },
}
METRICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"example": "backbone_relay_lag_events 0.0\n"}}}
}
TOKEN = {"access_token": "q8Zk2cV1-random-43-chars", "token_type": "bearer", "expires_in": 3600}
UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "https://clinical-backbone.dev/problems/unauthenticated",
                    "title": "Not authenticated",
                    "status": 401,
                    "detail": "session ended (logged off after inactivity or revoked)",
                }
            }
        }
    }
}
