"""The typed envelope rebuilds use is the one consumers get from the published JSON."""

from __future__ import annotations

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient, RecordAllergy
from events.store.published import PublishedEnvelope, published_envelope, published_model
from tests.unit.conftest import NURSE, FakeClock, ctx
from tests.unit.test_upcasting import store_v1_vitals
from tests.unit.test_write_side import _amoxicillin, registered


def test_the_typed_envelope_equals_the_validated_published_json(
    store: ClinicalStore, clock: FakeClock
) -> None:
    kept = registered(store, "MRN-P1")
    store.record_allergy(ctx(), RecordAllergy(kept, "latex", "rash", "moderate"))
    store.prescribe(ctx(), _amoxicillin(kept))
    store.record_vitals(ctx(NURSE), RecordVitals(kept, heart_rate=130))
    store_v1_vitals(store, clock, "150/95")
    gone = registered(store, "MRN-P2")
    store.record_vitals(ctx(NURSE), RecordVitals(gone, heart_rate=80))
    store.forget(ctx(reason="patient's request"), ErasePatient(gone, "GDPR art. 17"))

    notifications = store.event_log.after(0, 100).events
    erased = 0
    for notification in notifications:
        typed, payload = published_model(notification)
        assert typed == PublishedEnvelope.model_validate(published_envelope(notification))
        assert payload == (notification.event.payload if notification.event else None)
        erased += typed.payload is None
    assert len(notifications) >= 8 and erased >= 2
