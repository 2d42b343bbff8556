"""HL7 v2 messages applied to the real store: each message type's commands and resulting
state, refusals (unknown patient AE, unsupported AR), an ORU creating the order it reports
on, corrections amending, and resends that store nothing twice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import hl7  # type: ignore[import-untyped, unused-ignore]
import pytest

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.patients import RegisterPatient
from events.domain.aggregates.patients import PatientMergedError
from events.domain.envelope import SYSTEM_ACTOR, Actor
from services.hl7.contract import Refusal, Sender, Translation
from services.hl7.translate import TranslateSettings, translate
from tests.unit.conftest import account, ctx

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "hl7"
SENDER = Sender("REG", "NORTH")
HOSP = TranslateSettings(mrn_authorities="HOSP")
ANY = TranslateSettings()
# The sending system's principal, as the listener passes it.
INTERFACE = Actor(user_id=UUID("00000000-0000-4000-8000-0000000007a1"), role="system")


def read(
    store: ClinicalStore, name: str, *changes: tuple[str, str], settings: TranslateSettings = HOSP
) -> Translation:
    text = (DATA / name).read_text().replace("\n", "\r")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return translate(hl7.parse(text), SENDER, store, settings=settings)


def apply(
    store: ClinicalStore,
    name: str,
    *changes: tuple[str, str],
    key: str | None = None,
    settings: TranslateSettings = HOSP,
) -> list[CommandResult]:
    translation = read(store, name, *changes, settings=settings)
    context = CommandContext(
        INTERFACE,
        reason=f"HL7 {translation.message_type} from {SENDER.name}",
        idempotency_key=key or f"{SENDER.name}|{translation.control_id}",
    )
    return translation.apply(store, context)


def refusal(
    store: ClinicalStore,
    name: str,
    *changes: tuple[str, str],
    key: str | None = None,
    settings: TranslateSettings = HOSP,
) -> Refusal:
    with pytest.raises(Refusal) as caught:
        apply(store, name, *changes, key=key, settings=settings)
    return caught.value


@pytest.fixture
def house(pg_store: ClinicalStore) -> UUID:
    return account(pg_store, "dr.house", "physician")


def admitted(store: ClinicalStore) -> UUID:
    apply(store, "adt_a01_admit.hl7")
    return store.patient_id_for_mrn("MRN7001")


def placed(store: ClinicalStore) -> UUID:
    admitted(store)
    apply(store, "orm_o01_new.hl7")
    order_id = store.order_for_placer("PL-1001")
    assert order_id is not None
    return order_id


# --- ADT --------------------------------------------------------------------------------------


def test_a01_registers_an_unknown_patient_and_admits_them_once(
    pg_store: ClinicalStore, house: UUID
) -> None:
    # when an A01 comes for an MRN the backbone does not know
    results = apply(pg_store, "adt_a01_admit.hl7")
    # then the patient is registered from PID and the encounter started from PV1
    patient_id = pg_store.patient_id_for_mrn("MRN7001")
    patient = pg_store.patient(patient_id)
    assert (patient.family_name, tuple(patient.given_names)) == ("Okafor", ("Ada", "Chioma"))
    assert (patient.birth_date, patient.sex) == (date(1961, 4, 2), "female")
    _, encounter = pg_store.latest_encounter(patient_id)
    assert encounter is not None and encounter.open
    assert (encounter.encounter_class, encounter.attending_id) == ("inpatient", house)
    assert (encounter.location.ward, encounter.location.room, encounter.location.bed) == (
        "CARDIO",
        "12",
        "B",
    )
    assert encounter.started_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # PV1-44, +0100
    # and the same message sent again (the patient known now) replays the admission: nothing
    # is stored twice
    head = pg_store.event_log.head()
    [again] = apply(pg_store, "adt_a01_admit.hl7")
    assert pg_store.event_log.head() == head
    assert (again.id, again.replayed) == (results[-1].id, True)


def test_a04_admits_a_known_patient_without_registering_again(
    pg_store: ClinicalStore, house: UUID
) -> None:
    cmd = RegisterPatient("MRN7002", "Okafor", ("Ada",), date(1961, 4, 2), "female")
    patient_id = pg_store.register_patient(ctx(SYSTEM_ACTOR), cmd).id
    # PV1-7 "DR.HOUSE": usernames match whatever the case
    [started] = apply(pg_store, "adt_a04_register.hl7")
    encounter = pg_store.encounter(started.id)
    assert (encounter.patient_id, encounter.encounter_class) == (patient_id, "outpatient")
    assert encounter.attending_id == house


def test_a02_moves_and_a03_discharges_the_open_encounter(
    pg_store: ClinicalStore, house: UUID
) -> None:
    patient_id = admitted(pg_store)
    apply(pg_store, "adt_a02_transfer.hl7")
    _, moved = pg_store.latest_encounter(patient_id)
    assert moved is not None and (moved.location.ward, moved.location.bed) == ("ICU", "A")
    apply(pg_store, "adt_a03_discharge.hl7")
    _, ended = pg_store.latest_encounter(patient_id)
    assert ended is not None and not ended.open
    assert (ended.disposition, ended.ended_at) == ("home", datetime(2026, 11, 2, 9, tzinfo=UTC))
    # a transfer now has no open encounter to move
    assert refusal(pg_store, "adt_a02_transfer.hl7", ("ADT-0003", "ADT-0013")).location == "PV1"


def test_a08_changes_what_differs_and_nothing_else(pg_store: ClinicalStore, house: UUID) -> None:
    wilson = account(pg_store, "dr.wilson", "physician")
    patient_id = admitted(pg_store)
    results = apply(pg_store, "adt_a08_update.hl7")
    assert len(results) == 2  # the demographics, the attending
    assert pg_store.patient(patient_id).family_name == "Okafor-Smith"
    _, encounter = pg_store.latest_encounter(patient_id)
    assert encounter is not None and encounter.attending_id == wilson
    # the same content under another control id changes nothing: nothing is written
    assert apply(pg_store, "adt_a08_update.hl7", ("ADT-0004", "ADT-0014")) == []
    unknown = refusal(pg_store, "adt_a08_update.hl7", ("dr.wilson", "dr.nobody"))
    assert (unknown.code, unknown.location, unknown.reason) == ("AE", "PV1-7", "unknown attending")
    assert unknown.patient_id == patient_id


def test_a40_merges_the_mrg_record_into_the_pid_record(
    pg_store: ClinicalStore, house: UUID
) -> None:
    survivor = admitted(pg_store)
    apply(pg_store, "adt_a04_register.hl7", ("CLINIC-A^3", "CLINIC-B^3"))
    merged = pg_store.patient_id_for_mrn("MRN7002")
    [merge] = apply(pg_store, "adt_a40_merge.hl7")
    assert pg_store.survivor_of(merged) == survivor
    with pytest.raises(PatientMergedError):
        pg_store.patient(merged)
    # sent again, the merge is replayed; a message under the old MRN goes to the survivor
    [again] = apply(pg_store, "adt_a40_merge.hl7")
    assert (again.id, again.replayed) == (merge.id, True)
    apply(pg_store, "orm_o01_new.hl7", ("MRN7001^^^HOSP^MR", "MRN7002^^^HOSP^MR"))
    order_id = pg_store.order_for_placer("PL-1001")
    assert order_id is not None and pg_store.order(order_id).patient_id == survivor


def test_an_unknown_attending_refuses_the_admission_before_registering(
    pg_store: ClinicalStore, house: UUID
) -> None:
    head = pg_store.event_log.head()
    refused = refusal(pg_store, "adt_a01_admit.hl7", ("dr.house", "dr.nobody"))
    assert (refused.code, refused.location, refused.reason) == ("AE", "PV1-7", "unknown attending")
    assert refused.patient_id is None and pg_store.event_log.head() == head
    # still nobody under MRN7001: a discharge for them is a message for an unknown patient
    unknown = refusal(pg_store, "adt_a03_discharge.hl7")
    assert (unknown.code, unknown.location) == ("AE", "PID-3")


# --- refusals ---------------------------------------------------------------------------------


def test_a_message_for_an_unknown_patient_is_refused_ae_and_stores_nothing(
    pg_store: ClinicalStore, house: UUID
) -> None:
    head = pg_store.event_log.head()
    for name in ("orm_o01_new.hl7", "oru_r01_preliminary.hl7", "rde_o11_new.hl7"):
        refused = refusal(pg_store, name)
        assert (refused.code, refused.location, refused.reason, refused.patient_id) == (
            "AE",
            "PID-3",
            "unknown patient",
            None,
        )
    assert pg_store.event_log.head() == head


def test_an_unsupported_message_is_refused_ar(pg_store: ClinicalStore) -> None:
    head = pg_store.event_log.head()
    with pytest.raises(Refusal) as caught:
        apply(pg_store, "oml_o33_hl7apy.hl7", settings=ANY)
    assert (caught.value.code, caught.value.location) == ("AR", "MSH-9")
    assert pg_store.event_log.head() == head


# --- orders -----------------------------------------------------------------------------------


def test_orm_places_an_order_under_its_placer_number_and_cancels_it(
    pg_store: ClinicalStore, house: UUID
) -> None:
    order_id = placed(pg_store)
    order = pg_store.order(order_id)
    assert (order.test_code, order.priority, order.ordering_physician) == ("2345-7", "stat", house)
    # a second NW with the same placer number is another order: refused, not merged
    again = refusal(pg_store, "orm_o01_new.hl7", ("ORM-0001", "ORM-0011"))
    assert (again.code, again.location) == ("AE", "ORC-2")
    apply(pg_store, "orm_o01_cancel.hl7")
    assert pg_store.order(order_id).status == "cancelled"
    cancelled = list(pg_store.events_of(order_id))[-1]
    assert (cancelled.event_type, cancelled.reason) == ("order.cancelled", "Duplicate order")
    unknown = refusal(pg_store, "orm_o01_cancel.hl7", ("CA|PL-1001", "CA|PL-9999"))
    assert (unknown.code, unknown.location) == ("AE", "ORC-2")


def test_oml_o21_takes_the_loinc_triplet_and_the_tq1_priority(
    pg_store: ClinicalStore, house: UUID
) -> None:
    admitted(pg_store)
    [result] = apply(pg_store, "oml_o21_new.hl7")
    order = pg_store.order(result.id)
    assert (order.test_code, order.priority) == ("2823-3", "urgent")
    assert pg_store.order_for_placer("PL-2001") == result.id


# --- results ----------------------------------------------------------------------------------


def test_an_oru_for_an_order_never_seen_places_it_then_receives_the_results(
    pg_store: ClinicalStore,
) -> None:
    # given python-hl7's glucose ORU (its first OBX) for a registered patient
    cmd = RegisterPatient("555-44-4444", "Everywoman", ("Eve",), date(1962, 3, 5), "female")
    patient_id = pg_store.register_patient(ctx(SYSTEM_ACTOR), cmd).id
    primary = account(pg_store, "555-55-5555", "physician")
    # when it is applied: the order is placed from OBR, collected at OBR-7, resulted
    apply(pg_store, "oru_r01_glucose_obx1.hl7", settings=ANY)
    order_id = pg_store.order_for_placer("845439")
    assert order_id is not None
    order = pg_store.order(order_id)
    # the sample's provider sits in OBR-15, so no ordering provider (OBR-16) is named: the
    # sending system's principal is the orderer
    assert (order.patient_id, order.ordering_physician, order.priority) == (
        patient_id,
        INTERFACE.user_id,
        "routine",
    )
    assert order.collected_at == datetime(2002, 2, 15, 7, 30, tzinfo=UTC)
    [glucose] = order.results
    assert (glucose.code, glucose.value, glucose.unit, glucose.status) == (
        "1554-5",
        182,
        "mg/dl",  # as sent: a known spelling of mg/dL
        "final",
    )
    assert (glucose.reference_low, glucose.reference_high, glucose.flag) == (70, 105, "H")
    # the provider moved into OBR-16 orders the next one
    in_obr16 = ("||555-55-5555^PRIMARY", "|||555-55-5555^PRIMARY")
    apply(
        pg_store, "oru_r01_glucose_obx1.hl7", ("845439", "845440"), in_obr16, key="b", settings=ANY
    )
    named = pg_store.order_for_placer("845440")
    assert named is not None and pg_store.order(named).ordering_physician == primary
    # an OBR-16 naming nobody the backbone knows is refused, not ordered by a stranger
    stranger = refusal(
        pg_store,
        "oru_r01_glucose_obx1.hl7",
        ("845439", "845441"),
        in_obr16,
        ("|555-55-", "|777-55-"),
        key="c",
        settings=ANY,
    )
    assert (stranger.code, stranger.location, stranger.patient_id) == ("AE", "OBR-16", patient_id)
    assert pg_store.order_for_placer("845441") is None


def test_preliminary_then_final_then_correction_amend_one_result(
    pg_store: ClinicalStore, house: UUID
) -> None:
    order_id = placed(pg_store)
    apply(pg_store, "oru_r01_preliminary.hl7")
    order = pg_store.order(order_id)
    by_code = {r.code: r for r in order.results}
    assert order.collected_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    glucose, potassium = by_code["2345-7"], by_code["2823-3"]
    assert (glucose.value, glucose.status, glucose.flag) == (182, "preliminary", "H")
    assert (potassium.value, potassium.comparator, potassium.value_text) == (2.0, "<", "<2.0")
    assert by_code["5778-6"].value_text == "yellow" and by_code["5767-9"].value_text == "Clear"
    # F finalises the preliminary glucose; C corrects it (with the listener's reason)
    apply(pg_store, "oru_r01_final.hl7")
    final = next(r for r in pg_store.order(order_id).results if r.code == "2345-7")
    assert (final.result_id, final.value, final.status) == (glucose.result_id, 180, "final")
    apply(pg_store, "oru_r01_correction.hl7")
    results = pg_store.order(order_id).results
    corrected = next(r for r in results if r.code == "2345-7")
    assert (corrected.value, corrected.status, corrected.flag) == (95, "corrected", "N")
    assert corrected.original_value == 182 and len(results) == 4
    amended = list(pg_store.events_of(order_id))[-1]
    assert (amended.event_type, amended.reason) == ("result.amended", "HL7 ORU^R01 from REG|NORTH")
    # the correction again, under another control id: equal to what is stored, skipped
    head = pg_store.event_log.head()
    assert apply(pg_store, "oru_r01_correction.hl7", ("LAB-0003", "LAB-0013")) == []
    # a changed final value without C is refused: the lab must call it a correction
    changed = refusal(pg_store, "oru_r01_final.hl7", ("LAB-0002", "LAB-0012"))
    assert (changed.code, changed.location, changed.patient_id) == (
        "AE",
        "OBX-11",
        pg_store.patient_id_for_mrn("MRN7001"),
    )
    assert pg_store.event_log.head() == head


def test_a_message_refused_half_way_completes_when_sent_again(
    pg_store: ClinicalStore, house: UUID
) -> None:
    admitted(pg_store)
    # an ORU for an unseen order whose unit is not one: order and specimen stored, then AE
    odd = refusal(pg_store, "oru_r01_final.hl7", ("PL-1001", "PL-3001"), ("mg/dL", "mg/dX"))
    assert (odd.code, odd.location) == ("AE", "OBX-6")
    order_id = pg_store.order_for_placer("PL-3001")
    assert order_id is not None and pg_store.order(order_id).status == "collected"
    # the corrected message under the same control id replays what was stored
    apply(pg_store, "oru_r01_final.hl7", ("PL-1001", "PL-3001"))
    types = [e.event_type for e in pg_store.events_of(order_id)]
    assert types == ["order.placed", "specimen.collected", "result.received"]


# --- prescriptions ----------------------------------------------------------------------------


def test_rde_prescribes_with_the_prescriber_route_and_frequency(
    pg_store: ClinicalStore, house: UUID
) -> None:
    admitted(pg_store)
    [metformin] = apply(pg_store, "rde_o11_new.hl7")
    order = pg_store.medication(metformin.id)
    assert (order.drug_code, order.dose, order.dose_unit) == ("6809", 500, "mg")
    assert (order.route, order.frequency, order.prescriber) == ("oral", "bid", house)
    # v2.3: the frequency in RXE-1 (Q8H, PRN), no ORC-12: the interface prescribes
    [amoxicillin] = apply(pg_store, "rde_o11_v23.hl7")
    second = pg_store.medication(amoxicillin.id)
    assert (second.frequency, second.prescriber) == ("q8h prn", INTERFACE.user_id)


def test_an_order_naming_no_provider_is_ordered_by_the_open_encounters_attending(
    pg_store: ClinicalStore, house: UUID
) -> None:
    # given a patient admitted under dr.house, and a lab result naming no ordering provider
    patient_id = admitted(pg_store)
    cmd = RegisterPatient("555-44-4444", "Everywoman", ("Eve",), date(1962, 3, 5), "female")
    pg_store.register_patient(ctx(SYSTEM_ACTOR), cmd)
    # when it arrives for the admitted patient
    apply(pg_store, "oru_r01_glucose_obx1.hl7", ("555-44-4444", "MRN7001"), settings=ANY)
    order_id = pg_store.order_for_placer("845439")
    assert order_id is not None
    # then the attending orders it (its abnormal glucose reaches their inbox), not the system
    order = pg_store.order(order_id)
    assert (order.patient_id, order.ordering_physician) == (patient_id, house)
