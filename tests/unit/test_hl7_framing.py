"""MLLP framing, header reading and ACK building, and the intake's answers (no database)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.domain.errors import ImpossibleValueError
from services.hl7.ack import (
    Header,
    build_ack,
    check_header,
    error_location,
    read_ack,
    read_header,
)
from services.hl7.contract import Refusal, Sender, Translation
from services.hl7.intake import GENERIC_REASON, Inbound, Intake, Unavailable
from services.hl7.ledger import Answered, Rejection
from services.hl7.mllp import END_BLOCK, START_BLOCK, FrameTooLarge, frame, read_frame, segments_of
from services.hl7.settings import HL7Settings
from services.status import hl7_listener_status
from tests.unit.conftest import FakeClock, memory_store

NOW = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)
A01 = (
    "MSH|^~\\&|ADT1|GOOD HEALTH|BACKBONE|HOSP|20260301093000||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r"
    "PID|1||PATID1234^^^HOSP^MR||EVERYWOMAN^EVE||19620320|F"
)


def fields(ack: bytes, segment: str) -> list[str]:
    for line in ack.decode().split("\r"):
        if line.startswith(segment + "|"):
            return line.split("|")
    raise AssertionError(f"no {segment} in {ack!r}")


def read_all(data: bytes, limit: int = 65536) -> list[bytes | None]:
    async def run() -> list[bytes | None]:
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(data)
        reader.feed_eof()
        found: list[bytes | None] = []
        while (message := await read_frame(reader)) is not None:
            found.append(message)
        return found

    return asyncio.run(run())


# -- framing ------------------------------------------------------------------------------
def test_frames_are_read_one_by_one_noise_dropped_partial_frame_ignored() -> None:
    stream = frame(b"MSH|one") + b"\r\n" + b"junk" + frame(b"MSH|two") + START_BLOCK + b"MSH|cut"
    assert read_all(stream) == [b"MSH|one", b"MSH|two"]


def test_a_frame_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(FrameTooLarge):
        read_all(frame(b"MSH|" + b"x" * 70_000), limit=65536)


def test_a_block_without_start_block_is_kept_to_be_answered() -> None:
    assert read_all(b"garbage" + END_BLOCK) == [b"garbage"]


def test_segments_separated_by_cr_lf_or_crlf_become_cr() -> None:
    assert segments_of("MSH|a\nPID|b\r\nOBX|c\rOBX|d\n\n") == "MSH|a\rPID|b\rOBX|c\rOBX|d"


# -- header and ACK ---------------------------------------------------------------------------
def test_accept_ack_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    header = read_header(A01)
    assert header is not None
    ack = build_ack(header, "AA", NOW)
    msh = fields(ack, "MSH")
    assert msh[2:6] == ["BACKBONE", "HOSP", "ADT1", "GOOD HEALTH"]
    assert msh[6] == "20260301093015"
    assert msh[8] == "ACK^A01^ACK"
    assert msh[9] != "MSG00001" and len(msh[9]) == 20
    assert msh[11] == "2.5.1"
    assert fields(ack, "MSA") == ["MSA", "AA", "MSG00001"]
    assert b"ERR|" not in ack
    assert ack.endswith(b"\r")


def test_error_ack_has_an_err_segment_with_location_code_severity_and_reason() -> None:
    header = read_header(A01)
    refusal = Refusal("AE", "PID-3", "unknown patient | not ^ registered")
    ack = build_ack(header, "AE", NOW, refusal)
    assert fields(ack, "MSA") == ["MSA", "AE", "MSG00001"]
    err = fields(ack, "ERR")
    assert err[2] == "PID^1^3"
    assert err[3] == "204^Unknown key identifier^HL70357"
    assert err[4] == "E"
    assert err[8] == "unknown patient \\F\\ not \\S\\ registered"
    assert read_ack(ack.decode()) is not None


def test_versions_before_2_5_also_get_err_1_and_msa_3() -> None:
    header = read_header(A01.replace("|2.5.1", "|2.3"))
    ack = build_ack(header, "AR", NOW, Refusal("AR", "MSH-9", "ADT^A99 is not supported"))
    assert fields(ack, "MSH")[11] == "2.3"
    assert fields(ack, "MSA")[3] == "ADT\\S\\A99 is not supported"
    assert fields(ack, "ERR")[1] == "MSH^1^9^200&Unsupported message type&HL70357"


def test_garbage_is_answered_ar_with_nothing_to_echo() -> None:
    assert read_header("hello") is None
    with pytest.raises(Refusal) as refused:
        check_header(None)
    ack = build_ack(None, "AR", NOW, refused.value)
    assert fields(ack, "MSA") == ["MSA", "AR", ""]
    assert fields(ack, "MSH")[2] == "BACKBONE"


@pytest.mark.parametrize(
    ("text", "location"),
    [
        (A01.replace("|MSG00001|", "||"), "MSH-10"),
        (A01.replace("|ADT1|", "||"), "MSH-3"),
        (A01.replace("ADT^A01^ADT_A01", "ADT"), "MSH-9"),
        (A01.replace("|2.5.1", "|3.0"), "MSH-12"),
    ],
)
def test_headers_the_listener_cannot_take_are_refused(text: str, location: str) -> None:
    with pytest.raises(Refusal) as refused:
        check_header(read_header(text))
    assert refused.value.code == "AR"
    assert refused.value.location == location


@pytest.mark.parametrize(
    ("location", "erl"),
    [("PID-3", "PID^1^3"), ("OBX[2]-5", "OBX^2^5"), ("PID-5.2", "PID^1^5^1^2"), ("PV1", "PV1^1")],
)
def test_locations_become_err_2(location: str, erl: str) -> None:
    assert error_location(location) == erl


def test_one_patients_messages_share_a_routing_key() -> None:
    first = Inbound.of(A01.encode(), NOW)
    second = Inbound.of(A01.replace("MSG00001", "MSG00002").replace("\r", "\n").encode(), NOW)
    other = Inbound.of(A01.replace("PATID1234", "PATID9").encode(), NOW)
    assert first.routing_key() == second.routing_key() == "PATID1234^HOSP"
    assert other.routing_key() != first.routing_key()


# -- the intake, with a ledger in memory ------------------------------------------------------
class MemoryLedger:
    """The ledger's contract in a dict."""

    def __init__(self) -> None:
        self.acks: dict[tuple[str, str], bytes] = {}
        self.rejections: list[Rejection] = []
        self.fail_next = False

    def answered(self, sender: str, control_id: str) -> bytes | None:
        return self.acks.get((sender, control_id))

    def record(self, answered: Answered | None, rejection: Rejection | None) -> bytes | None:
        if self.fail_next:
            self.fail_next = False
            raise psycopg.OperationalError("connection lost")
        if answered is not None:
            key = (answered.sender, answered.control_id)
            if key in self.acks:
                return self.acks[key]
            self.acks[key] = answered.ack
        if rejection is not None:
            self.rejections.append(rejection)
        return answered.ack if answered is not None else None


def translator(behaviour: dict[str, Any]) -> Any:
    def translate(message: Any, sender: Sender, store: ClinicalStore) -> Translation:
        def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
            behaviour["contexts"].append(ctx)
            error = behaviour.get("raise")
            if error is not None:
                raise error
            return []

        return Translation("ADT^A01", str(message["MSH.F10"]), "key", apply)

    return translate


@pytest.fixture
def intake() -> tuple[Intake, MemoryLedger, dict[str, Any]]:
    behaviour: dict[str, Any] = {"contexts": []}
    ledger = MemoryLedger()
    store = memory_store(FakeClock())
    return Intake(store, ledger, translator(behaviour), clock=lambda: NOW), ledger, behaviour  # type: ignore[arg-type]


def test_the_sender_principal_and_idempotency_key_come_from_the_header(
    intake: tuple[Intake, MemoryLedger, dict[str, Any]],
) -> None:
    handler, _, behaviour = intake
    answer = handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    assert answer.code == "AA"
    ctx = behaviour["contexts"][0]
    assert ctx.actor.role == "interface"
    assert ctx.actor.user_id == handler.store.keyed_id(b"hl7-sender:ADT1|GOOD HEALTH")
    assert ctx.idempotency_key == "hl7:MSG00001"
    assert ctx.reason == "HL7 ADT^A01 MSG00001"


def test_a_resend_is_answered_from_the_ledger_without_applying_again(
    intake: tuple[Intake, MemoryLedger, dict[str, Any]],
) -> None:
    handler, _, behaviour = intake
    first = handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    again = handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    assert again.ack == first.ack and again.duplicate
    assert len(behaviour["contexts"]) == 1


def test_a_domain_error_is_ae_with_its_reason_and_the_message_kept(
    intake: tuple[Intake, MemoryLedger, dict[str, Any]],
) -> None:
    handler, ledger, behaviour = intake
    behaviour["raise"] = ImpossibleValueError("heart rate is outside what a patient can have")
    answer = handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    assert answer.code == "AE"
    assert fields(answer.ack, "ERR")[8] == "heart rate is outside what a patient can have"
    (kept,) = ledger.rejections
    assert kept.reason.startswith("heart rate") and kept.sealed is not None
    assert "EVERYWOMAN" not in kept.sealed


def test_an_unexpected_error_is_ae_with_a_generic_reason(
    intake: tuple[Intake, MemoryLedger, dict[str, Any]],
) -> None:
    handler, _, behaviour = intake
    behaviour["raise"] = KeyError("PATID1234")
    answer = handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    assert answer.code == "AE"
    assert fields(answer.ack, "ERR")[8] == GENERIC_REASON
    assert b"PATID1234" not in answer.ack


def test_an_unreachable_database_answers_nothing(
    intake: tuple[Intake, MemoryLedger, dict[str, Any]],
) -> None:
    handler, ledger, _ = intake
    ledger.fail_next = True
    with pytest.raises(Unavailable):
        handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW)))
    assert handler.handle(handler.prepare(Inbound.of(A01.encode(), NOW))).code == "AA"


def test_header_reads_any_separators() -> None:
    header = read_header(A01.replace("|", "#"))
    assert header == Header(
        separator="#",
        encoding="^~\\&",
        sending_application="ADT1",
        sending_facility="GOOD HEALTH",
        receiving_application="BACKBONE",
        receiving_facility="HOSP",
        message_code="ADT",
        trigger="A01",
        control_id="MSG00001",
        processing_id="P",
        version="2.5.1",
    )


def test_status_says_whether_the_listener_accepts_connections() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        up = hl7_listener_status(HL7Settings(port=port))
    assert (up.address, up.up) == (f"127.0.0.1:{port}", True)
    assert not hl7_listener_status(HL7Settings(port=port)).up


def test_plain_mllp_listens_off_loopback_only_when_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        HL7Settings(host="0.0.0.0")  # noqa: S104 - the setting under test
    assert HL7Settings(host="0.0.0.0", allow_remote=True).port == 2575  # noqa: S104
