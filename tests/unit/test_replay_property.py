"""Property: whatever commands a clinician sends, the stored events replay to the same state.

State is built two ways: by applying each saved event as it is saved (in memory, before
serialisation and encryption), and by reading the stream back from the store. They agree
for every accepted command sequence, and refused commands leave no trace.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.commands.medications import (
    ChangeMedication,
    DiscontinueMedication,
    Prescribe,
    RecordAdministration,
)
from events.commands.patients import RegisterPatient
from events.domain.aggregates import medications
from events.domain.aggregates.common import fold
from events.domain.envelope import ClinicalEvent
from events.domain.errors import DomainError
from tests.unit.conftest import NURSE, FakeClock, ctx, memory_store

commands = st.lists(
    st.one_of(
        st.tuples(st.just("change"), st.floats(min_value=1, max_value=6000), st.booleans()),
        st.tuples(st.just("administer"), st.floats(min_value=1, max_value=1000), st.booleans()),
        st.tuples(st.just("discontinue"), st.just(0.0), st.booleans()),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(commands)
def test_any_accepted_command_sequence_replays_to_the_same_state(
    sequence: list[tuple[str, float, bool]],
) -> None:
    clock = FakeClock()
    store = memory_store(clock)
    saved: list[ClinicalEvent] = []
    original_save = store.save

    def capture(*events: Any, **kwargs: Any) -> Any:
        saved.extend(events)
        return original_save(*events, **kwargs)

    store.save = capture  # type: ignore[method-assign]
    patient = store.register_patient(
        ctx(),
        RegisterPatient(
            mrn="MRN-77",
            family_name="Doe",
            given_names=("J",),
            birth_date=date(1990, 1, 1),
            sex="unknown",
        ),
    ).id
    medication_id = store.prescribe(
        ctx(),
        Prescribe(
            patient,
            drug_code="723",
            drug_name="amoxicillin",
            dose=500,
            dose_unit="mg",
            route="oral",
            frequency="tid",
        ),
    ).id
    for kind, amount, with_reason in sequence:
        clock.advance(minutes=5)
        reason = "clinical review" if with_reason else None
        try:
            if kind == "change":
                change = ChangeMedication(medication_id, dose=amount)
                store.change_medication(ctx(reason=reason), change)
            elif kind == "administer":
                given = RecordAdministration(medication_id, dose=amount, override_reason=reason)
                store.record_administration(ctx(NURSE), given)
            else:
                stop = DiscontinueMedication(medication_id)
                store.discontinue_medication(ctx(reason=reason), stop)
        except DomainError:
            continue

    in_memory = fold(medications.evolve)(
        None, [e for e in saved if e.originator_id == medication_id]
    )
    replayed = store.load(medication_id, medications.evolve)
    assert replayed == in_memory
    stored = list(store.events_of(medication_id))
    assert [e.event_id for e in stored] == [
        e.event_id for e in saved if e.originator_id == medication_id
    ]
