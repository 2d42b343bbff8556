"""Stored ``vitals.recorded`` v1 events (blood pressure as "142/95") are read as v2."""

from __future__ import annotations

from uuid import uuid4

from events.application import ClinicalStore
from events.domain.envelope import ClinicalEvent
from events.domain.payloads.observations import VitalsRecorded, VitalsRecordedV1
from tests.unit.conftest import NURSE, FakeClock


def store_v1_vitals(store: ClinicalStore, clock: FakeClock, blood_pressure: str) -> ClinicalEvent:
    """Write a v1 event the way the store wrote them before v2 existed."""
    stream = uuid4()
    event = ClinicalEvent(
        originator_id=stream,
        originator_version=1,
        timestamp=clock.now,
        event_id=uuid4(),
        event_type="vitals.recorded",
        schema_version=1,
        patient_id=uuid4(),
        occurred_at=clock.now,
        actor=NURSE,
        reason=None,
        correlation_id=uuid4(),
        causation_id=None,
        payload=VitalsRecordedV1(heart_rate=72, blood_pressure=blood_pressure, spo2=98),
    )
    store.save(event)
    return event


def test_a_stored_v1_vitals_event_is_upcast_to_v2_on_read(
    store: ClinicalStore, clock: FakeClock
) -> None:
    original = store_v1_vitals(store, clock, "142/95")

    (read,) = store.events_of(original.originator_id)

    assert read.schema_version == 2
    assert isinstance(read.payload, VitalsRecorded)
    assert (read.payload.systolic_bp, read.payload.diastolic_bp) == (142, 95)
    assert read.payload.heart_rate == 72
    assert read.payload.flags == {"systolic_bp": "H", "diastolic_bp": "H"}
    assert read.event_id == original.event_id
