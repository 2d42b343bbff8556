"""A lab order as ServiceRequest, its Specimen (once collected) and DiagnosticReport (once
resulted): all three from ``lab_orders`` (and ``lab_results``), under the order's id."""

from __future__ import annotations

from typing import Any

from services.fhir.kinds import PATIENT, Kind, Param
from services.fhir.resources.coding import (
    LOINC,
    Row,
    base,
    concept,
    instant,
    reference,
    without_none,
)

V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
PLACER = "urn:backbone:placer-order-number"
ORDER_STATUS = (
    "CASE WHEN o.cancelled_at IS NOT NULL THEN 'revoked' "
    "WHEN o.resulted_at IS NOT NULL THEN 'completed' ELSE 'active' END"
)

SERVICE_REQUEST_SOURCE = (
    "SELECT o.order_id AS id, o.patient_id, "  # noqa: S608 - constants, no input
    "GREATEST(o.placed_at, o.collected_at, o.resulted_at, o.cancelled_at) AS last_updated, "
    f"{ORDER_STATUS} AS status, '{LOINC}'::text AS code_system, o.test_code AS code, "
    "o.test_name, o.priority, o.ordering_physician, o.placed_at, o.encounter_id, "
    "o.placer_number, o.cancel_reason FROM lab_orders o"
)
SPECIMEN_SOURCE = (
    "SELECT o.order_id AS id, o.patient_id, o.collected_at AS last_updated, "
    "'available'::text AS status, o.collected_at FROM lab_orders o "
    "WHERE o.collected_at IS NOT NULL"
)
REPORT_SOURCE = (
    "SELECT o.order_id AS id, o.patient_id, max(r.recorded_at) AS last_updated, "  # noqa: S608 - constants, no input
    "CASE WHEN bool_or(r.status = 'preliminary') THEN 'partial' "
    "WHEN bool_or(r.amended OR r.status = 'corrected') THEN 'corrected' ELSE 'final' END "
    f"AS status, '{LOINC}'::text AS code_system, o.test_code AS code, o.test_name, "
    "'LAB'::text AS category, max(r.observed_at) AS effective, o.encounter_id, "
    "array_agg(r.result_id ORDER BY r.seq) AS results "
    "FROM lab_orders o JOIN lab_results r ON r.order_id = o.order_id "
    "GROUP BY o.order_id, o.patient_id, o.test_code, o.test_name, o.encounter_id"
)


def _code(row: Row) -> dict[str, Any]:
    return concept(LOINC, row["code"], row["test_name"]) or {"text": "laboratory test"}


def to_service_request(row: Row) -> dict[str, Any]:
    return without_none(
        {
            **base("ServiceRequest", row),
            "identifier": [{"system": PLACER, "value": row["placer_number"]}]
            if row["placer_number"]
            else None,
            "status": row["status"],
            "intent": "order",
            "category": [concept("http://snomed.info/sct", "108252007", "Laboratory procedure")],
            "priority": row["priority"],
            "code": _code(row),
            "subject": reference("Patient", row["patient_id"]),
            "encounter": reference("Encounter", row["encounter_id"])
            if row["encounter_id"]
            else None,
            "authoredOn": row["placed_at"] and instant(row["placed_at"]),
            "requester": reference("Practitioner", row["ordering_physician"])
            if row["ordering_physician"]
            else None,
            "note": [{"text": f"cancelled: {row['cancel_reason']}"}]
            if row["cancel_reason"]
            else None,
        }
    )


def to_specimen(row: Row) -> dict[str, Any]:
    return {
        **base("Specimen", row),
        "status": row["status"],
        "subject": reference("Patient", row["patient_id"]),
        "request": [reference("ServiceRequest", row["id"])],
        "collection": {"collectedDateTime": instant(row["collected_at"])},
    }


def to_diagnostic_report(row: Row) -> dict[str, Any]:
    return without_none(
        {
            **base("DiagnosticReport", row),
            "basedOn": [reference("ServiceRequest", row["id"])],
            "status": row["status"],
            "category": [concept(V2_0074, "LAB", "Laboratory")],
            "code": _code(row),
            "subject": reference("Patient", row["patient_id"]),
            "encounter": reference("Encounter", row["encounter_id"])
            if row["encounter_id"]
            else None,
            "effectiveDateTime": instant(row["effective"]),
            "issued": instant(row["last_updated"]),
            "specimen": [reference("Specimen", row["id"])],
            "result": [reference("Observation", r) for r in row["results"]],
        }
    )


CODE = Param("token", ("code_system", "code"), "the test's LOINC code")
SERVICE_REQUEST = Kind(
    name="ServiceRequest",
    source=SERVICE_REQUEST_SOURCE,
    to_resource=to_service_request,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": CODE,
        "status": Param("token", ("status",), "active | completed | revoked"),
        "authored": Param("date", ("placed_at",), "when the order was placed"),
        "priority": Param("token", ("priority",), "routine | urgent | stat"),
    },
)
SPECIMEN = Kind(
    name="Specimen",
    source=SPECIMEN_SOURCE,
    to_resource=to_specimen,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "collected": Param("date", ("collected_at",), "when it was collected"),
        "status": Param("token", ("status",), "available"),
    },
)
DIAGNOSTIC_REPORT = Kind(
    name="DiagnosticReport",
    source=REPORT_SOURCE,
    to_resource=to_diagnostic_report,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": CODE,
        "status": Param("token", ("status",), "partial | final | corrected"),
        "category": Param("token", ("category",), "LAB (v2-0074)"),
        "date": Param("date", ("effective",), "when the results were observed"),
    },
)
