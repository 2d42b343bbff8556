"""Results through the store: values stored as reported, statuses, re-notification and
escalation decided by the order aggregate, and v1 result events read as v2."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.commands.orders import (
    AcknowledgeResult,
    AmendResult,
    CollectSpecimen,
    EscalateResult,
    PlaceOrder,
    ReceiveResults,
)
from events.commands.patients import RegisterPatient
from events.domain.aggregates import orders
from events.domain.aggregates.orders import AnalyteInput
from events.domain.envelope import SYSTEM_ACTOR, Actor, ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, ReasonRequired
from events.domain.payloads import orders as o
from tests.unit.conftest import ADMIN, LAB, NURSE, FakeClock, account, ctx
from tests.unit.test_write_side import registration

THIRTY_MINUTES = timedelta(minutes=30)


# --- the order aggregate, through the store --------------------------------------------------


def _order(store: ClinicalStore, physician: Actor, code: str = "2823-3") -> tuple[UUID, UUID]:
    patient = store.register_patient(ctx(physician), _registration()).id
    order_id = store.place_order(ctx(physician), PlaceOrder(patient, code, "Potassium", "stat")).id
    store.collect_specimen(ctx(NURSE), CollectSpecimen(order_id))
    return patient, order_id


def _registration() -> RegisterPatient:
    return registration(f"MRN-{uuid4().hex[:8]}")


def _receive(store: ClinicalStore, order_id: UUID, analyte_in: AnalyteInput) -> UUID:
    received = store.receive_results(ctx(LAB), ReceiveResults(order_id, (analyte_in,)))
    return UUID(received.detail["results"][0]["result_id"])


def _result(store: ClinicalStore, order_id: UUID) -> orders.Result:
    order = store.load(order_id, orders.evolve)
    assert order is not None
    return order.results[0]


def _physician(store: ClinicalStore) -> Actor:
    return Actor(user_id=account(store, f"dr.{uuid4().hex[:6]}", "physician"), role="physician")


def test_a_comparator_and_a_text_value_are_stored_as_reported(store: ClinicalStore) -> None:
    physician = _physician(store)
    _, order_id = _order(store, physician, "10839-9")
    troponin = AnalyteInput("10839-9", "Troponin I", "<0.01", "ng/mL", None, 0.04)
    culture = AnalyteInput("600-7", "Blood culture", "no growth", None)
    received = store.receive_results(ctx(LAB), ReceiveResults(order_id, (troponin, culture)))

    flags = [(r["flag"], r["value_type"], r["comparator"]) for r in received.detail["results"]]
    assert flags == [("N", "numeric", "<"), (None, "text", None)]
    first, second = store.load(order_id, orders.evolve).results  # type: ignore[union-attr]
    assert (first.value, first.comparator, first.value_text) == (0.01, "<", "<0.01")
    assert (second.value, second.value_text, second.flag) == (None, "no growth", None)


def test_preliminary_then_final_without_a_reason_then_corrected_with_one(
    store: ClinicalStore,
) -> None:
    physician = _physician(store)
    _, order_id = _order(store, physician)
    preliminary = AnalyteInput("2823-3", "Potassium", 4.1, "mmol/L", 3.5, 5.1, "preliminary")
    result_id = _receive(store, order_id, preliminary)
    assert _result(store, order_id).status == "preliminary"

    final = AnalyteInput("2823-3", "Potassium", 4.2, "mmol/L", 3.5, 5.1)
    store.amend_result(ctx(LAB), AmendResult(order_id, result_id, final))
    assert _result(store, order_id).status == "final"

    corrected = AnalyteInput("2823-3", "Potassium", 5.9, "mmol/L", 3.5, 5.1)
    with pytest.raises(ReasonRequired):
        store.amend_result(ctx(LAB), AmendResult(order_id, result_id, corrected))
    store.amend_result(
        ctx(LAB, reason="calibration error"), AmendResult(order_id, result_id, corrected)
    )
    result = _result(store, order_id)
    assert (result.status, result.value, result.flag) == ("corrected", 5.9, "H")


def test_a_corrected_critical_result_is_notified_again_after_an_acknowledgement(
    store: ClinicalStore, clock: FakeClock
) -> None:
    physician = _physician(store)
    _, order_id = _order(store, physician)
    result_id = _receive(store, order_id, AnalyteInput("2823-3", "K", 7.0, "mmol/L", 3.5, 5.1))
    store.acknowledge_result(ctx(physician), AcknowledgeResult(order_id, result_id))
    assert _result(store, order_id).acknowledged

    clock.advance(minutes=5)
    corrected = AnalyteInput("2823-3", "K", 7.6, "mmol/L", 3.5, 5.1)
    amended = store.amend_result(
        ctx(LAB, reason="dilution error"), AmendResult(order_id, result_id, corrected)
    )

    result = _result(store, order_id)
    assert amended.detail == {"flag": "HH", "status": "corrected"}
    assert not result.acknowledged and result.notified_at == clock.now


def test_an_unacknowledged_critical_result_escalates_to_the_rest_of_the_care_team(
    store: ClinicalStore, clock: FakeClock
) -> None:
    physician = _physician(store)
    patient, order_id = _order(store, physician)
    team = {role: account(store, f"{role}.{uuid4().hex[:6]}", role) for role in ROLES}
    for user_id in (physician.user_id, *team.values()):
        store.change_care_team(ctx(ADMIN), ChangeCareTeam(patient, user_id, "added"))
    result_id = _receive(store, order_id, AnalyteInput("2823-3", "K", 2.1, "mmol/L", 3.5, 5.1))
    escalate = EscalateResult(order_id, result_id, THIRTY_MINUTES)

    # before the escalation time: refused
    clock.advance(minutes=29)
    with pytest.raises(ClinicalRuleViolation, match="not passed"):
        store.escalate_result(ctx(SYSTEM_ACTOR), escalate)
    # after it: the nurse, the other physician and the pharmacist, not the orderer
    clock.advance(minutes=2)
    escalated = store.escalate_result(ctx(SYSTEM_ACTOR), escalate)

    expected = {str(team[r]) for r in ROLES}
    assert set(escalated.detail["notified"]) == expected
    (event,) = [e for e in store.events_of(order_id) if e.event_type == "result.escalated"]
    assert isinstance(event.payload, o.ResultEscalated)
    assert {r.role for r in event.payload.notified} == {"nurse", "physician", "pharmacist"}
    assert event.payload.flag == "LL" and event.payload.after_minutes == 30
    # once only
    with pytest.raises(ClinicalRuleViolation, match="escalated already"):
        store.escalate_result(ctx(SYSTEM_ACTOR), escalate)


ROLES = ("nurse", "physician", "pharmacist")


def test_an_acknowledged_or_normal_result_is_not_escalated(
    store: ClinicalStore, clock: FakeClock
) -> None:
    physician = _physician(store)
    _, order_id = _order(store, physician)
    critical = _receive(store, order_id, AnalyteInput("2823-3", "K", 7.0, "mmol/L", 3.5, 5.1))
    store.acknowledge_result(ctx(physician), AcknowledgeResult(order_id, critical))
    clock.advance(hours=1)

    with pytest.raises(ClinicalRuleViolation, match="acknowledged already"):
        store.escalate_result(ctx(SYSTEM_ACTOR), EscalateResult(order_id, critical, THIRTY_MINUTES))
    normal = AnalyteInput("2823-3", "K", 4.0, "mmol/L", 3.5, 5.1)
    store.amend_result(ctx(LAB, reason="wrong patient"), AmendResult(order_id, critical, normal))
    with pytest.raises(ClinicalRuleViolation, match="not critical"):
        store.escalate_result(ctx(SYSTEM_ACTOR), EscalateResult(order_id, critical, THIRTY_MINUTES))


# --- upcasting -------------------------------------------------------------------------------


def _save_v1(store: ClinicalStore, clock: FakeClock, payload: o.Payload, version: int) -> UUID:
    stream = uuid4()
    store.save(
        ClinicalEvent(
            originator_id=stream,
            originator_version=version,
            timestamp=clock.now,
            event_id=uuid4(),
            event_type=payload.event_type,
            schema_version=1,
            patient_id=uuid4(),
            occurred_at=clock.now,
            actor=LAB,
            reason="re-run",
            correlation_id=uuid4(),
            causation_id=None,
            payload=payload,
        )
    )
    return stream


def test_v1_results_read_as_final_numbers_and_v1_amendments_as_corrections(
    store: ClinicalStore, clock: FakeClock
) -> None:
    result_id = uuid4()
    v1 = o.AnalyteResultV1(
        result_id=result_id, code="2823-3", name="K", value=7.0, unit="mmol/L", flag="HH"
    )
    received = _save_v1(store, clock, o.ResultReceivedV1(results=(v1,)), 1)
    amended = _save_v1(
        store,
        clock,
        o.ResultAmendedV1(
            result_id=result_id,
            value=4.0,
            unit="mmol/L",
            flag="N",
            previous_value=7.0,
            previous_unit="mmol/L",
        ),
        1,
    )

    (read,) = store.events_of(received)
    (correction,) = store.events_of(amended)

    assert read.schema_version == 2 and isinstance(read.payload, o.ResultReceived)
    result = read.payload.results[0]
    assert (result.status, result.value_type, result.comparator) == ("final", "numeric", None)
    assert isinstance(correction.payload, o.ResultAmended)
    assert correction.payload.status == "corrected" and correction.payload.previous_value == 7.0
