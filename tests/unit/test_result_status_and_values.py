"""Results a clinician can rely on, as narratives: statuses, non-numeric values, critical
limits with their sources, re-notification and escalation decided by the order aggregate."""

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
from events.domain.errors import ClinicalRuleViolation, ImpossibleValueError, ReasonRequired
from events.domain.payloads import orders as o
from events.domain.rules.reference import analyte
from events.domain.rules.results import (
    amended_status,
    flag_result,
    flag_value,
    parse_value,
    received_status,
)
from tests.unit.conftest import ADMIN, LAB, NURSE, FakeClock, account, ctx
from tests.unit.test_write_side import registration

THIRTY_MINUTES = timedelta(minutes=30)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "value", "comparator", "text"),
    [
        (6.9, 6.9, None, None),
        ("6.9", 6.9, None, None),
        ("<0.01", 0.01, "<", "<0.01"),
        (" >= 1000 ", 1000.0, ">=", ">= 1000"),
        ("\u22643", 3.0, "<=", "\u22643"),
        ("positive", None, None, "positive"),
        ("< 0.01 approx", None, None, "< 0.01 approx"),
    ],
)
def test_a_reported_value_is_a_number_a_number_with_its_comparator_or_text(
    reported: float | str, value: float | None, comparator: str | None, text: str | None
) -> None:
    parsed = parse_value(reported)
    assert (parsed.value, parsed.comparator, parsed.text) == (value, comparator, text)
    assert parsed.value_type == ("text" if value is None else "numeric")


def test_text_gets_no_numeric_flag() -> None:
    # given a qualitative result / when flagged / then no numeric flag, even for a known code
    assert flag_value("2823-3", parse_value("positive"), None, 3.5, 5.1) is None


@pytest.mark.parametrize(
    ("code", "reported", "unit", "low", "high", "expected"),
    [
        # every value above 1000 mg/dL is beyond the critical high of 500: HH
        ("2345-7", ">1000", "mg/dL", 70, 99, "HH"),
        # below 0.01 mg/dL glucose: every value is below the critical low of 40: LL
        ("2345-7", "<0.01", "mg/dL", 70, 99, "LL"),
        # below 0.01 ng/mL troponin, from the possible minimum 0 up: all normal
        ("10839-9", "<0.01", "ng/mL", None, 0.04, "N"),
        # below 5 mmol/L potassium could be L or N: no flag
        ("2823-3", "<5", "mmol/L", 3.5, 5.1, None),
        # above 5.1 could be H or HH: no flag; above 6.2 is HH whatever it is
        ("2823-3", ">5.1", "mmol/L", 3.5, 5.1, None),
        ("2823-3", ">6.2", "mmol/L", 3.5, 5.1, "HH"),
        # at least 6.2 includes 6.2 itself, which is not beyond the limit: no flag
        ("2823-3", ">=6.2", "mmol/L", 3.5, 5.1, None),
        # an unknown code: only the reference range, unbounded below
        ("99999-9", ">10", "mg/dL", 1, 10, "H"),
        ("99999-9", "<1", "mg/dL", 1, 10, "L"),
        ("99999-9", "<5", "mg/dL", None, 10, "N"),
    ],
)
def test_a_comparator_value_is_flagged_only_when_every_value_it_allows_has_that_flag(
    code: str,
    reported: str,
    unit: str,
    low: float | None,
    high: float | None,
    expected: str | None,
) -> None:
    assert flag_value(code, parse_value(reported), unit, low, high) == expected


def test_a_comparator_bound_below_the_possible_minimum_is_impossible() -> None:
    with pytest.raises(ImpossibleValueError):
        flag_value("2823-3", parse_value("<0"), "mmol/L", 3.5, 5.1)
    assert flag_value("2823-3", parse_value("<=0"), "mmol/L", 3.5, 5.1) == "LL"


def test_a_number_needs_a_unit() -> None:
    with pytest.raises(ClinicalRuleViolation, match="unit"):
        flag_value("2823-3", parse_value("4.2"), None, 3.5, 5.1)


# --- critical limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "unit", "low_value", "high_value"),
    [
        ("2339-0", "mg/dL", 45, 500),  # glucose, whole blood (point of care)
        ("2339-0", "mmol/L", 2.5, 30),
        ("6298-4", "mmol/L", 2.5, 6.8),  # potassium, whole blood
        ("2947-0", "mmol/L", 115, 165),  # sodium, whole blood
        ("10839-9", "ng/mL", None, 1.2),  # troponin I
        ("10839-9", "pg/mL", None, 450),
        ("2744-1", "[pH]", 7.05, 7.7),  # arterial pH
        ("2019-8", "mm[Hg]", 15, 75),  # arterial pCO2
        ("1994-3", "mmol/L", 0.6, 1.7),  # ionised calcium
        ("19123-9", "mg/dL", 0.8, 5.1),  # magnesium
        ("2777-1", "mg/dL", 0.7, 9.5),  # phosphate
        ("3173-2", "s", None, 120),  # aPTT
        ("14979-9", "s", None, 120),
        ("751-8", "10*3/uL", 0.3, None),  # neutrophils
    ],
)
def test_the_new_critical_limits_flag_whole_blood_and_acute_care_codes(
    code: str, unit: str, low_value: float | None, high_value: float | None
) -> None:
    if low_value is not None:
        assert flag_result(code, low_value, unit, None, None) == "LL"
    if high_value is not None:
        assert flag_result(code, high_value, unit, None, None) == "HH"


@pytest.mark.parametrize(
    "code",
    [
        "2339-0",
        "6298-4",
        "2947-0",
        "10839-9",
        "2744-1",
        "2019-8",
        "1994-3",
        "19123-9",
        "2777-1",
        "3173-2",
        "14979-9",
        "751-8",
    ],
)
def test_each_new_critical_limit_cites_its_source(code: str) -> None:
    found = analyte(code)
    assert found is not None and found.source is not None
    assert found.critical_low is not None or found.critical_high is not None


def test_whole_blood_limits_equal_to_a_limit_are_not_critical() -> None:
    assert flag_result("6298-4", 6.2, "mmol/L", 3.5, 5.1) == "H"
    assert flag_result("2947-0", 120, "mmol/L", 135, 145) == "L"
    assert flag_result("2339-0", 60, "mg/dL", 70, 99) == "L"


# --- statuses --------------------------------------------------------------------------------


def test_a_new_result_is_preliminary_or_final_and_never_corrected() -> None:
    assert received_status("preliminary") == "preliminary"
    assert received_status("final") == "final"
    with pytest.raises(ClinicalRuleViolation, match="amends"):
        received_status("corrected")


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        ("preliminary", None, ("final", False)),
        ("preliminary", "final", ("final", False)),
        ("preliminary", "preliminary", ("preliminary", False)),
        ("final", None, ("corrected", True)),
        ("final", "corrected", ("corrected", True)),
        ("corrected", None, ("corrected", True)),
    ],
)
def test_an_amendment_finalises_a_preliminary_result_or_corrects_a_final_one(
    current: str, requested: str | None, expected: tuple[str, bool]
) -> None:
    assert amended_status(current, requested) == expected


@pytest.mark.parametrize(
    ("current", "requested"),
    [("preliminary", "corrected"), ("final", "final"), ("final", "preliminary")],
)
def test_a_final_result_is_not_made_final_or_preliminary_again(
    current: str, requested: str
) -> None:
    with pytest.raises(ClinicalRuleViolation):
        amended_status(current, requested)


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
