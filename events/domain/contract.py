"""The event contract: every event type, its payload versions, its topic, its upcasters.

One table drives the store (which payload model to validate with), the relay (which topic),
``backbone schema export`` (JSON Schemas) and the docs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from events.domain import topics
from events.domain.payloads import (
    access,
    encounters,
    medications,
    merges,
    observations,
    orders,
    patients,
)
from events.domain.payloads.base import Payload
from events.domain.rules.vitals import check_vitals

JsonDict = dict[str, Any]
Upcaster = Callable[[JsonDict], JsonDict]


@dataclass(frozen=True)
class EventSpec:
    """An event type: its payload model per version, its topic and who typically reads it."""

    event_type: str
    versions: tuple[type[Payload], ...]
    topic: topics.TopicSpec
    consumers: str

    @property
    def current(self) -> type[Payload]:
        return self.versions[-1]


def _spec(topic: topics.TopicSpec, consumers: str, *versions: type[Payload]) -> EventSpec:
    for number, model in enumerate(versions, start=1):
        if model.schema_version != number:
            raise RuntimeError(f"{model.__name__} should be version {number}")
    return EventSpec(versions[0].event_type, versions, topic, consumers)


CLINICAL = "chart projections, compliance"
SPECS: tuple[EventSpec, ...] = (
    _spec(topics.PATIENTS, "registration, chart, every department", patients.PatientRegistered),
    _spec(topics.PATIENTS, "chart, registration", patients.DemographicsUpdated),
    _spec(topics.PATIENTS, "chart, pharmacy", patients.AllergyRecorded),
    _spec(topics.PATIENTS, "chart, pharmacy", patients.AllergyRefuted),
    _spec(topics.PATIENTS, "chart, pharmacy", patients.AllergyStatusChanged),
    _spec(topics.PATIENTS, "chart", patients.NoKnownAllergies),
    _spec(topics.PATIENTS, "every consumer (purge the patient)", patients.PatientErased),
    _spec(topics.PATIENTS, "chart, registration, every department", merges.PatientMerged),
    _spec(topics.PATIENTS, "chart, registration, every department", merges.PatientUnmerged),
    _spec(topics.PATIENTS, "chart, bed management, care team", encounters.EncounterStarted),
    _spec(topics.PATIENTS, "chart, bed management", encounters.EncounterTransferred),
    _spec(topics.PATIENTS, "chart, care team", encounters.EncounterUpdated),
    _spec(topics.PATIENTS, "chart, bed management, billing", encounters.EncounterEnded),
    _spec(topics.ORDERS, "lab, order worklists, chart", orders.OrderPlaced),
    _spec(topics.ORDERS, "lab, order worklists", orders.SpecimenCollected),
    _spec(topics.ORDERS, "lab, order worklists, chart", orders.OrderCancelled),
    _spec(
        topics.RESULTS,
        "chart, lab routing, physicians' inbox",
        orders.ResultReceivedV1,
        orders.ResultReceived,
    ),
    _spec(topics.RESULTS, "chart, lab routing", orders.ResultAmendedV1, orders.ResultAmended),
    _spec(topics.RESULTS, "lab routing, compliance", orders.ResultAcknowledged),
    _spec(topics.RESULTS, "care team inbox, compliance", orders.ResultEscalated),
    _spec(topics.MEDICATIONS, "pharmacy, chart, nursing (MAR)", medications.MedicationPrescribed),
    _spec(topics.MEDICATIONS, "pharmacy, chart, nursing (MAR)", medications.MedicationChanged),
    _spec(topics.MEDICATIONS, "pharmacy, chart, nursing (MAR)", medications.MedicationDiscontinued),
    _spec(
        topics.MEDICATIONS,
        "chart, pharmacy, nursing (MAR)",
        medications.MedicationAdministeredV1,
        medications.MedicationAdministered,
    ),
    _spec(topics.MEDICATIONS, "chart, prescribers", medications.PharmacyVerified),
    _spec(topics.MEDICATIONS, "chart, prescribers", medications.PharmacyRejected),
    _spec(
        topics.OBSERVATIONS,
        "chart, early-warning scoring",
        observations.VitalsRecordedV1,
        observations.VitalsRecorded,
    ),
    _spec(topics.OBSERVATIONS, "chart, per-kg dose checks", observations.ObservationRecorded),
    _spec(topics.ACCESS, "access audit, compliance", access.ChartViewed),
    _spec(topics.ACCESS, "access audit, compliance alerts", access.BreakGlassGranted),
    _spec(topics.ACCESS, "access audit, API authorization", patients.CareTeamChanged),
    _spec(topics.ACCESS, "access audit, compliance alerts", access.AccessDenied),
    _spec(topics.ACCESS, "access audit, compliance", access.AuditRead),
    _spec(topics.ACCESS, "care team (encounters), staffing", access.WardStaffChanged),
    _spec(topics.ACCESS, "compliance (two-person erasure)", patients.ErasureRequested),
    _spec(topics.ACCESS, "identity, compliance", access.UserCreated),
    _spec(topics.ACCESS, "identity, compliance", access.UserRolesChanged),
    _spec(topics.ACCESS, "identity, compliance", access.UserRoleChangeRequested),
    _spec(topics.ACCESS, "identity, compliance", access.UserApproved),
    _spec(topics.ACCESS, "compliance alerts", access.LoginFailed),
    _spec(topics.ACCESS, "compliance alerts", access.LockedOut),
    _spec(topics.ACCESS, "identity, compliance", access.UserDeactivated),
    _spec(topics.ACCESS, "identity, compliance", access.UserPasswordChanged),
    _spec(topics.ACCESS, "identity, compliance", access.UserSessionsRevoked),
    _spec(topics.ACCESS, "compliance alerts", access.LoginThrottled),
    _spec(topics.ACCESS, "compliance (key management)", access.KeysRotated),
    _spec(topics.ACCESS, "compliance (key management)", access.IdKeySeparated),
)
BY_TYPE: dict[str, EventSpec] = {spec.event_type: spec for spec in SPECS}


def event_types_on(topic_names: Collection[str]) -> frozenset[str]:
    """The event types that travel on any of these topics."""
    return frozenset(spec.event_type for spec in SPECS if spec.topic.name in topic_names)


class UnknownEventType(ValueError):
    """An ``event_type`` / ``schema_version`` the contract does not define."""


def spec_of(event_type: str) -> EventSpec:
    try:
        return BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def _vitals_v1_to_v2(payload: JsonDict) -> JsonDict:
    """Split "systolic/diastolic" and compute the flags the v2 recorder would have stored."""
    upcast = {k: v for k, v in payload.items() if k != "blood_pressure"}
    pressure = payload.get("blood_pressure")
    if pressure:
        systolic, diastolic = pressure.split("/", 1)
        upcast["systolic_bp"] = float(systolic)
        upcast["diastolic_bp"] = float(diastolic)
    measured = {k: float(v) for k, v in upcast.items() if v is not None}
    upcast["flags"] = dict(check_vitals(measured))
    return upcast


def _administered_v1_to_v2(payload: JsonDict) -> JsonDict:
    """Doses recorded before reasons were asked for carry none."""
    return {**payload, "override_reason": None}


def _received_v1_to_v2(payload: JsonDict) -> JsonDict:
    """Results recorded before statuses and text values were final numbers."""
    return {**payload, "results": [{**r, "status": "final"} for r in payload["results"]]}


def _amended_v1_to_v2(payload: JsonDict) -> JsonDict:
    """Amendments recorded before statuses were corrections of a numeric result."""
    return {**payload, "status": "corrected"}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("result.received", 1): _received_v1_to_v2,
    ("result.amended", 1): _amended_v1_to_v2,
    ("vitals.recorded", 1): _vitals_v1_to_v2,
    ("medication.administered", 1): _administered_v1_to_v2,
}


def read_payload(event_type: str, schema_version: int, data: JsonDict) -> Payload:
    """Validate a stored payload, upcasting it to the current version first."""
    spec = spec_of(event_type)
    if not 1 <= schema_version <= len(spec.versions):
        raise UnknownEventType(f"{event_type} has no schema version {schema_version}")
    version = schema_version
    while version < len(spec.versions):
        data = UPCASTERS[(event_type, version)](data)
        version += 1
    return spec.current.model_validate(data)
