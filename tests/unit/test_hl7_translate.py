"""Reading HL7 v2 messages into translations: types, versions, patient keys, fields, and
what is refused before anything is applied (AR: unsupported or incomplete; AE: a value the
backbone cannot take)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import hl7  # type: ignore[import-untyped, unused-ignore]
import pytest
from pydantic import ValidationError

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.domain.aggregates.orders import LabOrder, Result
from events.domain.envelope import SYSTEM_ACTOR
from services.hl7.contract import Refusal, Sender, Translation
from services.hl7.translate import TranslateSettings, sender_zone, translate
from services.hl7.translate.fields import Message, Segment, calendar_date, timestamp
from services.hl7.translate.pharmacy import frequency
from services.hl7.translate.results import (
    Observation,
    observation,
    reference_range,
    sort_out,
    structured_numeric,
)
from services.hl7.translate.steps import Steps

DATA = Path(__file__).resolve().parent.parent / "data" / "hl7"
SENDER = Sender("REG", "NORTH")
HOSP = TranslateSettings(mrn_authorities="HOSP", timezone="Europe/Berlin")
ANY = TranslateSettings()


def text(name: str) -> str:
    return (DATA / name).read_text().replace("\n", "\r")


def parse(name: str, *changes: tuple[str, str]) -> hl7.Message:
    message = text(name)
    for old, new in changes:
        assert old in message, old
        message = message.replace(old, new)
    return hl7.parse(message)


def read(
    store: ClinicalStore, name: str, *changes: tuple[str, str], settings: TranslateSettings = HOSP
) -> Translation:
    return translate(parse(name, *changes), SENDER, store, settings=settings)


def refused(
    store: ClinicalStore, name: str, *changes: tuple[str, str], settings: TranslateSettings = HOSP
) -> Refusal:
    with pytest.raises(Refusal) as caught:
        read(store, name, *changes, settings=settings)
    return caught.value


def segment(line: str) -> Segment:
    message = Message(hl7.parse("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\r" + line))
    return message.segments[1]


# --- dispatch, versions, patient keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message_type", "control_id"),
    [
        ("adt_a01_admit.hl7", "ADT^A01", "ADT-0001"),
        ("adt_a04_register.hl7", "ADT^A04", "ADT-0002"),
        ("adt_a02_transfer.hl7", "ADT^A02", "ADT-0003"),
        ("adt_a08_update.hl7", "ADT^A08", "ADT-0004"),
        ("adt_a03_discharge.hl7", "ADT^A03", "ADT-0005"),
        ("adt_a40_merge.hl7", "ADT^A40", "ADT-0006"),
        ("orm_o01_new.hl7", "ORM^O01", "ORM-0001"),
        ("orm_o01_cancel.hl7", "ORM^O01", "ORM-0002"),
        ("oml_o21_new.hl7", "OML^O21", "OML-0001"),
        ("oru_r01_preliminary.hl7", "ORU^R01", "LAB-0001"),
        ("rde_o11_new.hl7", "RDE^O11", "RX-0001"),
        ("rde_o11_v23.hl7", "RDE^O11", "RX-0002"),
    ],
)
def test_each_supported_message_reads_as_a_translation_keyed_by_its_patient(
    store: ClinicalStore, name: str, message_type: str, control_id: str
) -> None:
    translation = read(store, name)
    assert translation.message_type == message_type
    assert translation.control_id == control_id
    # the MR identifier of the accepted authority, not the national one beside it
    assert translation.patient_key == "HOSP|MRN7001" or name == "adt_a04_register.hl7"


def test_a_v23_message_without_a_structure_picks_the_accepted_authoritys_identifier(
    store: ClinicalStore,
) -> None:
    # given python-hl7's ADT^A01 v2.3 ("ADT^A01", no structure), PID-3 = MSH_MRN (MR) ~ MSH_EMPI
    def key(authorities: str) -> str:
        settings = TranslateSettings(mrn_authorities=authorities)
        return read(store, "adt_a01_v23.hl7", settings=settings).patient_key

    assert key("") == "MSH_MRN|2148790"  # any authority: the MR one first
    assert key("msh_empi") == "MSH_EMPI|162840"  # authorities ignore case
    assert key("OTHER, MSH_MRN") == "MSH_MRN|2148790"
    assert refused(store, "adt_a01_v23.hl7").location == "PID-3"  # HOSP assigned neither


def test_unsupported_types_and_versions_are_refused_ar(store: ClinicalStore) -> None:
    # hl7apy's OML^O33 is a lab order of another structure than O21
    assert (refused(store, "oml_o33_hl7apy.hl7", settings=ANY).code, "MSH-9") == ("AR", "MSH-9")
    a05 = refused(store, "adt_a01_admit.hl7", ("ADT^A01^ADT_A01", "ADT^A05^ADT_A05"))
    assert (a05.code, a05.location) == ("AR", "MSH-9")
    assert "ADT^A05" in a05.reason
    for version in ("2.6", "2.2", "2.5.2"):
        wrong = refused(store, "adt_a01_admit.hl7", ("|P|2.5.1", f"|P|{version}"))
        assert (wrong.code, wrong.location) == ("AR", "MSH-12")
    no_id = refused(store, "adt_a01_admit.hl7", ("|ADT-0001|", "||"))
    assert (no_id.code, no_id.location) == ("AR", "MSH-10")


def test_missing_segments_and_identifiers_are_refused_ar_and_foreign_ones_ae(
    store: ClinicalStore,
) -> None:
    pid = text("orm_o01_new.hl7").split("\r")[1]
    no_pid = refused(store, "orm_o01_new.hl7", (pid + "\r", ""))
    assert (no_pid.code, no_pid.location) == ("AR", "PID")
    empty = refused(store, "orm_o01_new.hl7", ("MRN7001^^^HOSP^MR~998877^^^NATIONAL^SS", ""))
    assert (empty.code, empty.location) == ("AR", "PID-3")
    foreign = refused(store, "orm_o01_new.hl7", ("^^^HOSP^MR", "^^^ELSEWHERE^MR"))
    assert (foreign.code, foreign.location, foreign.patient_id) == ("AE", "PID-3", None)


# --- ADT --------------------------------------------------------------------------------------


def test_adt_refusals_name_the_pv1_field(store: ClinicalStore) -> None:
    # hl7apy's ADT^A01 names a referring doctor (PV1-8) but no attending (PV1-7)
    apy = refused(store, "adt_a01_hl7apy.hl7", settings=ANY)
    assert (apy.code, apy.location) == ("AR", "PV1-7")
    preadmit = refused(store, "adt_a01_admit.hl7", ("PV1|1|I|", "PV1|1|P|"))
    assert (preadmit.code, preadmit.location) == ("AE", "PV1-2")
    no_ward = refused(store, "adt_a02_transfer.hl7", ("ICU^1^A", ""))
    assert (no_ward.code, no_ward.location) == ("AR", "PV1-3")
    pv1 = text("adt_a03_discharge.hl7").split("\r")[3]
    no_pv1 = refused(store, "adt_a03_discharge.hl7", (pv1, ""))
    assert (no_pv1.code, no_pv1.location) == ("AR", "PV1")
    no_mrg = refused(store, "adt_a40_merge.hl7", ("MRG|MRN7002^^^HOSP^MR", ""))
    assert (no_mrg.code, no_mrg.location) == ("AR", "MRG")
    itself = refused(store, "adt_a40_merge.hl7", ("MRG|MRN7002", "MRG|MRN7001"))
    assert (itself.code, itself.location) == ("AE", "MRG-1")


def test_a_batch_message_is_read_and_its_sex_code_refused(store: ClinicalStore) -> None:
    # python-hl7's batch: one ADT^A04 whose PID-8 is "1", not an HL7 administrative sex
    [message] = hl7.parse_batch(text("adt_a04_batch.hl7"))
    with pytest.raises(Refusal) as caught:
        translate(message, SENDER, store, settings=ANY)
    assert (caught.value.code, caught.value.location) == ("AE", "PID-8")
    sex = refused(store, "adt_a04_register.hl7", ("19610402|F", "19610402|Q"))
    assert (sex.code, sex.location) == ("AE", "PID-8")
    born = refused(store, "adt_a04_register.hl7", ("19610402|F", "196104|F"))
    assert (born.code, born.location) == ("AR", "PID-7")


# --- orders and results -----------------------------------------------------------------------


def test_order_refusals(store: ClinicalStore) -> None:
    change = refused(store, "orm_o01_new.hl7", ("ORC|NW|", "ORC|XO|"))
    assert (change.code, change.location) == ("AR", "ORC-1")
    no_placer = refused(store, "orm_o01_new.hl7", ("|PL-1001|", "||"))
    assert (no_placer.code, no_placer.location) == ("AR", "ORC-2")
    callback = read(store, "orm_o01_new.hl7", ("^^^^^S", "^^^^^C"))
    assert callback.summary == {"orders": "PL-1001"}
    odd = refused(store, "orm_o01_new.hl7", ("^^^^^S", "^^^^^Z"))
    assert (odd.code, odd.location) == ("AE", "ORC-7")
    no_test = refused(
        store, "orm_o01_new.hl7", ("2345-7^Glucose [Mass/volume] in Serum or Plasma^LN", "")
    )
    assert (no_test.code, no_test.location) == ("AR", "OBR-4")


def test_python_hl7s_glucose_sample_reads_except_its_fn_value(store: ClinicalStore) -> None:
    # the full sample: a second OBX of value type FN, which no result can hold
    fn = refused(store, "oru_r01_glucose.hl7", settings=ANY)
    assert (fn.code, fn.location) == ("AR", "OBX[2]-2")  # the second OBX
    # its first OBX alone: the patient has no authority, so only "any authority" takes it
    assert read(store, "oru_r01_glucose_obx1.hl7", settings=ANY).patient_key == "|555-44-4444"
    assert refused(store, "oru_r01_glucose_obx1.hl7").location == "PID-3"


def test_result_refusals(store: ClinicalStore) -> None:
    deleted = refused(store, "oru_r01_final.hl7", ("||F|||2026", "||D|||2026"))
    assert (deleted.code, deleted.location) == ("AE", "OBX-11")
    unstated = refused(store, "oru_r01_final.hl7", ("||F|||2026", "|||||2026"))
    assert (unstated.code, unstated.location) == ("AR", "OBX-11")
    garbled = refused(store, "oru_r01_final.hl7", ("||180|", "||1B0|"))
    assert (garbled.code, garbled.location) == ("AR", "OBX-5")
    obx = text("oru_r01_final.hl7").split("\r")[3]
    bare = refused(store, "oru_r01_final.hl7", (obx, ""))
    assert (bare.code, bare.location) == ("AR", "OBX")


@pytest.mark.parametrize(
    ("sent", "low", "high"),
    [
        ("70-105", 70, 105),
        ("70_105", 70, 105),
        ("3.5 - 5.1", 3.5, 5.1),
        ("-2-2", -2, 2),
        ("<5", None, 5),
        (">60", 60, None),
        ("negative", None, None),
        ("", None, None),
    ],
)
def test_reference_ranges(sent: str, low: float | None, high: float | None) -> None:
    assert reference_range(sent) == (low, high)


@pytest.mark.parametrize(
    ("sent", "value"),
    [
        ("<^5", "<5"),
        (">^60", ">60"),
        (">=^60", ">=60"),
        ("^0.5", 0.5),
        ("=^7", 7.0),
        ("^10^-^20", "10-20"),
        ("^1^:^128", "1:128"),
    ],
)
def test_structured_numeric_values(sent: str, value: float | str) -> None:
    assert structured_numeric(segment(f"OBX|1|SN|2345-7||{sent}")) == value


def test_an_observation_reads_value_unit_range_status_and_time() -> None:
    zone = ZoneInfo("Europe/Berlin")
    obx = segment("OBX|1|CWE|5767-9^Appearance^LN||CLR^Clear^L||||||F|||202611011400")
    seen = observation(obx, zone)
    assert (seen.code, seen.name, seen.value, seen.unit, seen.status) == (
        "5767-9",
        "Appearance",
        "Clear",
        None,
        "F",
    )
    assert seen.observed_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    # a local code with the LOINC code as its alternate: the LOINC triplet is taken
    alt = observation(segment("OBX|1|NM|GLU^Glucose^L^2345-7^Glucose^LN||5.5|mmol/L|||||P"), zone)
    assert (alt.code, alt.value, alt.unit, alt.status) == ("2345-7", 5.5, "mmol/L", "P")


# --- fields -----------------------------------------------------------------------------------


def test_times_are_utc_with_the_senders_zone_for_local_ones() -> None:
    zone = ZoneInfo("Europe/Berlin")
    evn = segment("EVN|A01|20240102153000+0100|202401021530|2024|20240102153000.1234|2024AB")
    assert timestamp(evn, 2, zone) == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert timestamp(evn, 3, zone) == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert timestamp(evn, 4, zone) == datetime(2023, 12, 31, 23, 0, tzinfo=UTC)
    assert timestamp(evn, 5, UTC) == datetime(2024, 1, 2, 15, 30, 0, 123400, tzinfo=UTC)
    assert timestamp(evn, 7, zone) is None
    # the same text always gives an equal, plain-UTC value (a resent message's fingerprint)
    assert repr(timestamp(evn, 2, zone)).endswith("tzinfo=datetime.timezone.utc)")
    with pytest.raises(Refusal) as caught:
        timestamp(evn, 6, zone)
    assert (caught.value.code, caught.value.location) == ("AR", "EVN-6")
    assert calendar_date(segment("PID|1||||||19610402"), 7) is not None
    with pytest.raises(Refusal):
        calendar_date(segment("PID|1||||||196104"), 7)


def test_frequencies_from_tq1_or_the_quantity_timing() -> None:
    orc, rxe = segment("ORC|NW|RX-1"), segment("RXE|1^Q8H^^^^PRN|723^amoxicillin^RXNORM")
    assert frequency(orc, rxe, None) == "q8h prn"
    assert frequency(orc, segment("RXE|1^Q8H"), segment("TQ1|1||BID")) == "bid"
    with pytest.raises(Refusal):  # twice a day as needed is not a frequency we have
        frequency(orc, rxe, segment("TQ1|1||BID"))
    assert frequency(orc, segment("RXE||723"), segment("TQ1|1||QHS")) == "at bedtime"
    assert frequency(orc, segment("RXE||723"), segment("TQ1|1||||||||PRN")) == "prn"
    with pytest.raises(Refusal) as missing:
        frequency(orc, segment("RXE||723"), None)
    assert (missing.value.code, missing.value.location) == ("AR", "TQ1-3")
    with pytest.raises(Refusal) as odd:
        frequency(orc, segment("RXE||723"), segment("TQ1|1||Q2D"))
    assert (odd.value.code, odd.value.location) == ("AE", "TQ1-3")


def test_prescription_refusals(store: ClinicalStore) -> None:
    route = refused(store, "rde_o11_new.hl7", ("RXR|PO^Oral", "RXR|XX^Other"))
    assert (route.code, route.location) == ("AE", "RXR-1")
    unit = refused(store, "rde_o11_new.hl7", ("|500||mg", "|500||tablet"))
    assert (unit.code, unit.location) == ("AE", "RXE-5")
    no_rxr = refused(store, "rde_o11_new.hl7", ("\rRXR|PO^Oral^HL70162", ""))
    assert (no_rxr.code, no_rxr.location) == ("AR", "RXR")
    stop = refused(store, "rde_o11_new.hl7", ("ORC|NW|", "ORC|DC|"))
    assert (stop.code, stop.location) == ("AR", "ORC-1")


# --- amendments and resends (pure) ------------------------------------------------------------


def _order(*results: Result) -> LabOrder:
    return LabOrder(
        id=uuid4(),
        version=3,
        patient_id=uuid4(),
        test_code="2345-7",
        test_name="Glucose",
        priority="routine",
        ordering_physician=uuid4(),
        status="resulted",
        results=results,
    )


def _glucose(value: float, status: str) -> Result:
    return Result(uuid4(), "2345-7", "Glucose", value, "mg/dL", 70, 105, "H", status=status)


def _seen(value: str, status: str) -> tuple[Observation, ...]:
    zone = ZoneInfo("UTC")
    line = f"OBX|1|NM|2345-7^Glucose^LN||{value}|mg/dL|70-105||||{status}"
    return (observation(segment(line), zone),)


def test_results_of_a_known_code_amend_and_equal_ones_are_skipped() -> None:
    patient = uuid4()
    preliminary = _glucose(182, "preliminary")
    order = _order(preliminary)
    # F for a preliminary result finalises it; C too (a preliminary result is not corrected)
    for status in ("F", "C"):
        new, [(target, analyte, _)] = sort_out(order, _seen("180", status), patient)
        assert (new, target, analyte.status, analyte.value) == (
            [],
            preliminary.result_id,
            "final",
            180,
        )
    # the same preliminary value again: already applied, nothing to do
    assert sort_out(order, _seen("182", "P"), patient) == ([], [])
    final = _order(_glucose(180, "final"))
    assert sort_out(final, _seen("180", "F"), patient) == ([], [])
    with pytest.raises(Refusal) as changed:
        sort_out(final, _seen("95", "F"), patient)
    assert (changed.value.code, changed.value.location) == ("AE", "OBX-11")
    [(_, corrected, _)] = sort_out(final, _seen("95", "C"), patient)[1]
    assert corrected.status == "corrected"
    corrected_once = _order(_glucose(95, "corrected"))
    assert sort_out(corrected_once, _seen("95", "C"), patient) == ([], [])
    with pytest.raises(Refusal) as nothing:
        sort_out(_order(), _seen("95", "C"), patient)
    assert nothing.value.location == "OBX-11"


def test_each_step_gets_its_own_key_and_fingerprint(store: ClinicalStore) -> None:
    ctx = CommandContext(SYSTEM_ACTOR, "HL7", idempotency_key="REG|NORTH|ADT-0001", request="x")
    steps = Steps(store, ctx)
    step = steps.context("register", None, None)
    assert (step.idempotency_key, step.request, step.reason) == (
        "REG|NORTH|ADT-0001:register",
        None,
        "HL7",
    )
    assert (
        Steps(store, replace(ctx, idempotency_key=None)).context("x", None, "why").reason == "why"
    )


def test_local_times_default_to_the_offset_of_msh_7_else_the_configured_zone() -> None:
    berlin = TranslateSettings(timezone="Europe/Berlin")
    offset = Message(hl7.parse(text("adt_a04_register.hl7"))).segments[0]
    assert sender_zone(offset, berlin).utcoffset(None) == timedelta(hours=1)
    local = segment("MSH|^~\\&|A|B|C|D|202607011200||ADT^A01|1|P|2.5")
    assert sender_zone(local, berlin) == ZoneInfo("Europe/Berlin")
    with pytest.raises(ValidationError):
        TranslateSettings(timezone="Mars/Olympus_Mons")
    assert TranslateSettings(mrn_authorities=" hosp, ,Lab ").authorities == {"HOSP", "LAB"}
