"""An Idempotency-Key answers a repeat of its request, and only of its request."""

from __future__ import annotations

from datetime import date

import pytest

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import RecordAllergy, RegisterPatient
from events.domain.errors import IdempotencyKeyReused, RequestInFlight
from tests.unit.conftest import NURSE, ctx


def test_a_key_replays_its_own_request_and_refuses_any_other(store: ClinicalStore) -> None:
    # given a patient and an allergy recorded under a key
    patient = store.register_patient(
        ctx(), RegisterPatient("MRN-K1", "Okafor", ("Ada",), date(1961, 5, 4), "female")
    ).id
    other = store.register_patient(
        ctx(), RegisterPatient("MRN-K2", "Lindqvist", ("Bo",), date(1970, 1, 2), "male")
    ).id
    first = store.record_allergy(
        ctx(NURSE, idempotency_key="k-1"), RecordAllergy(patient, "latex", "rash", "mild")
    )
    head = store.event_log.head()

    # when the same request is sent again / then the first answer comes back, nothing stored
    again = store.record_allergy(
        ctx(NURSE, idempotency_key="k-1"), RecordAllergy(patient, "latex", "rash", "mild")
    )
    assert (again.id, again.position, again.replayed) == (first.id, first.position, True)

    # when the key comes with another body, another patient or another command
    for reuse in (
        lambda: store.record_allergy(
            ctx(NURSE, idempotency_key="k-1"), RecordAllergy(patient, "nuts", "rash", "mild")
        ),
        lambda: store.record_allergy(
            ctx(NURSE, idempotency_key="k-1"), RecordAllergy(other, "latex", "rash", "mild")
        ),
        lambda: store.record_vitals(
            ctx(NURSE, idempotency_key="k-1"), RecordVitals(patient, heart_rate=80)
        ),
    ):
        # then it is refused (422 at the API), and nothing is written or dropped silently
        with pytest.raises(IdempotencyKeyReused, match="Idempotency-Key"):
            reuse()
    assert store.event_log.head() == head


def test_a_key_whose_first_request_is_still_running_answers_in_flight(
    store: ClinicalStore,
) -> None:
    # given a request with a key that, while it is being decided, is sent again
    patient = store.register_patient(
        ctx(), RegisterPatient("MRN-K3", "Okafor", ("Ada",), date(1961, 5, 4), "female")
    ).id
    seen: list[Exception] = []

    def resend_meanwhile(_: object) -> bool:
        try:
            store.record_vitals(
                ctx(NURSE, idempotency_key="k-2"), RecordVitals(patient, heart_rate=80)
            )
        except RequestInFlight as exc:
            seen.append(exc)
        return False

    first = store.record_vitals(
        ctx(NURSE, idempotency_key="k-2", guard=resend_meanwhile),
        RecordVitals(patient, heart_rate=80),
    )

    # then the second got 409's error, the first wrote once, and a later repeat replays it
    assert len(seen) == 1 and "still being processed" in str(seen[0])
    again = store.record_vitals(
        ctx(NURSE, idempotency_key="k-2"), RecordVitals(patient, heart_rate=80)
    )
    assert (again.id, again.position, again.replayed) == (first.id, first.position, True)
