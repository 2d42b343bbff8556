"""The HL7 v2 listener over a real socket, on an isolated PostgreSQL store.

The translation here is the tests' own small table (register, update, vitals, an
unsupported type, a crash): the listener is tested for what it owns — framing, ACKs,
duplicates, ordering, the rejected messages and their replay — not for the translations.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.observations import RecordVitals
from events.commands.patients import RegisterPatient, UpdateDemographics
from events.domain.errors import NotFound
from events.settings import StoreSettings
from services.bootstrap import service_pool
from services.hl7.client import SendFailed, read, send
from services.hl7.contract import Refusal, Sender, Translation
from services.hl7.intake import Intake
from services.hl7.ledger import Ledger, table_names
from services.hl7.listener import Listener
from services.hl7.mllp import END_BLOCK, frame
from services.hl7.settings import HL7Settings
from tests.cli import backbone_on

pytestmark = pytest.mark.integration
TRANSLATOR = "tests.integration.test_hl7_listener:translate"
SEXES = {"F": "female", "M": "male", "O": "other", "U": "unknown"}


# -- the tests' translation table -------------------------------------------------------------
def _step(ctx: CommandContext, index: int) -> CommandContext:
    key = ctx.idempotency_key
    return replace(ctx, idempotency_key=None if key is None else f"{key}:{index}", request=None)


def translate(message: Any, sender: Sender, store: ClinicalStore) -> Translation:
    """ADT^A04 registers, ADT^A08 renames, ORU^R01 records a heart rate; ADT^A99 crashes."""
    kind = f"{message['MSH.F9.R1.C1']}^{message['MSH.F9.R1.C2']}"
    control_id = str(message["MSH.F10"])
    mrn = str(message["PID.F3.R1.C1"])
    family, given = str(message["PID.F5.R1.C1"]), str(message["PID.F5.R1.C2"])

    def register(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        born = date.fromisoformat(f"{message['PID.F7'][:4]}-{message['PID.F7'][4:6]}-01")
        command = RegisterPatient(mrn, family, (given,), born, SEXES[str(message["PID.F8"])])
        return [store.register_patient(_step(ctx, 0), command)]

    def rename(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = store.patient_id_for_mrn(mrn)
        try:
            store.patient(patient_id)
        except NotFound:
            raise Refusal("AE", "PID-3", "unknown patient") from None
        if str(message["PID.F8"]) not in SEXES:
            raise Refusal("AE", "PID-8", "administrative sex is not one of F, M, O, U", patient_id)
        return [store.update_demographics(_step(ctx, 0), UpdateDemographics(patient_id, family))]

    def vitals(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = store.patient_id_for_mrn(mrn)  # an unknown one is the store's NotFound
        heart_rate = float(str(message["OBX.F5"]))
        return [store.record_vitals(_step(ctx, 0), RecordVitals(patient_id, heart_rate))]

    def crash(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        raise RuntimeError(f"bug while reading {mrn}")

    steps = {"ADT^A04": register, "ADT^A08": rename, "ORU^R01": vitals, "ADT^A99": crash}
    if kind not in steps:
        raise Refusal("AR", "MSH-9", f"{kind} is not supported")
    return Translation(kind, control_id, mrn, steps[kind])


def adt(trigger: str, control_id: str, mrn: str, family: str = "Doe", sex: str = "F") -> bytes:
    return (
        f"MSH|^~\\&|REG|WARD 3|BACKBONE|HOSP|20260301093000||ADT^{trigger}|{control_id}|P|2.5.1\r"
        f"EVN|{trigger}|20260301093000\r"
        f"PID|1||{mrn}^^^HOSP^MR||{family}^Jane||19800101|{sex}"
    ).encode()


def oru(control_id: str, mrn: str, heart_rate: str) -> bytes:
    return (
        f"MSH|^~\\&|LAB|HOSP|BACKBONE|HOSP|20260301093000||ORU^R01|{control_id}|P|2.4\r"
        f"PID|1||{mrn}^^^HOSP^MR||Doe^Jane\r"
        f"OBR|1|||8867-4^Heart rate^LN\r"
        f"OBX|1|NM|8867-4^Heart rate^LN||{heart_rate}|/min"
    ).encode()


def field_of(ack: bytes, segment: str, number: int) -> str:
    for line in ack.decode().split("\r"):
        if line.startswith(segment + "|"):
            parts = line.split("|")
            if segment == "MSH":  # MSH-1 is the separator: parts[n - 1] is MSH-n
                number -= 1
            return parts[number] if len(parts) > number else ""
    raise AssertionError(f"no {segment} in {ack!r}")


# -- a running listener -----------------------------------------------------------------------
@dataclass
class Running:
    """A listener serving on a free port in a thread of its own."""

    port: int
    intake: Intake
    ledger: Ledger
    pool: ConnectionPool
    store: ClinicalStore

    def send(self, message: bytes) -> bytes:
        return send(message, "127.0.0.1", self.port, timeout_s=30)

    def rows(self, table: str) -> int:
        name = dict(zip(("acks", "rejected"), table_names(self.store.name), strict=True))[table]
        with self.pool.connection() as conn:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
def running(pg_store: ClinicalStore, store_settings: StoreSettings) -> Iterator[Running]:
    pool = service_pool(store_settings)
    ledger = Ledger(pool, store_settings.store_name)
    ledger.create()
    intake = Intake(pg_store, ledger, translate)
    listener = Listener(intake, HL7Settings(port=0, workers=4, drain_timeout_s=5))
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ports: list[int] = []

    def started(port: int) -> None:
        ports.append(port)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(listener.run(stop, started))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "the listener did not start"
    try:
        yield Running(ports[0], intake, ledger, pool, pg_store)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        pool.close()


def events_of(store: ClinicalStore, mrn: str) -> list[Any]:
    return list(store.events_of(store.patient_id_for_mrn(mrn)))


# -- the scenarios ----------------------------------------------------------------------------
def test_garbage_and_unsupported_types_are_answered_ar(running: Running) -> None:
    garbage = running.send(b"this is not HL7")
    assert read(garbage).code == "AR"
    assert field_of(garbage, "MSA", 2) == ""

    unsupported = running.send(adt("A99", "C-1", "M1").replace(b"ADT^A99", b"ZZZ^Z01"))
    assert (read(unsupported).code, read(unsupported).control_id) == ("AR", "C-1")
    assert field_of(unsupported, "ERR", 2) == "MSH^1^9"
    assert field_of(unsupported, "ERR", 3) == "200^Unsupported message type^HL70357"
    assert running.rows("rejected") == 2


def test_a_registration_is_accepted_once_durable_under_the_senders_principal(
    running: Running,
) -> None:
    ack = running.send(adt("A04", "REG-1", "MRN-A1"))
    assert read(ack).code == "AA"
    assert field_of(ack, "MSA", 2) == "REG-1"
    assert field_of(ack, "MSH", 9) == "ACK^A04^ACK"
    assert field_of(ack, "MSH", 12) == "2.5.1"
    assert [field_of(ack, "MSH", n) for n in (3, 4, 5, 6)] == ["BACKBONE", "HOSP", "REG", "WARD 3"]
    assert field_of(ack, "MSH", 10) not in ("", "REG-1")
    (registered,) = events_of(running.store, "MRN-A1")
    assert registered.actor.role == "interface"
    assert registered.actor.user_id == running.store.keyed_id(b"hl7-sender:REG|WARD 3")
    assert registered.reason == "HL7 ADT^A04 REG-1"


def test_refusals_are_answered_ae_with_an_err_segment(running: Running) -> None:
    unknown = running.send(adt("A08", "UPD-1", "MRN-NOBODY"))
    assert read(unknown).code == "AE"
    assert field_of(unknown, "ERR", 2) == "PID^1^3"
    assert field_of(unknown, "ERR", 3) == "204^Unknown key identifier^HL70357"
    assert field_of(unknown, "ERR", 4) == "E"
    assert field_of(unknown, "ERR", 8) == "unknown patient"

    assert read(running.send(adt("A04", "REG-2", "MRN-B1"))).code == "AA"
    impossible = running.send(oru("LAB-1", "MRN-B1", "900"))
    assert read(impossible).code == "AE"
    assert "heart" in field_of(impossible, "ERR", 8).lower()
    assert field_of(impossible, "MSH", 12) == "2.4"
    stranger = running.send(oru("LAB-2", "MRN-NOT-HERE", "70"))
    assert field_of(stranger, "ERR", 3).startswith("204^")


def test_an_unexpected_error_is_ae_and_the_connection_stays_open(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
        sock.sendall(frame(adt("A99", "BUG-1", "MRN-SECRET-9")))
        crashed = _read_acks(sock, 1)[0]
        sock.sendall(frame(adt("A04", "REG-3", "MRN-C1")))
        after = _read_acks(sock, 1)[0]
    assert read(crashed).code == "AE"
    assert b"MRN-SECRET-9" not in crashed
    assert read(after).code == "AA"


def test_a_resend_is_answered_with_the_same_ack_and_stored_once(running: Running) -> None:
    first = running.send(adt("A04", "DUP-1", "MRN-D1"))
    again = running.send(adt("A04", "DUP-1", "MRN-D1"))
    assert again == first
    assert len(events_of(running.store, "MRN-D1")) == 1
    refused = running.send(adt("A08", "DUP-2", "MRN-NONE"))
    assert running.send(adt("A08", "DUP-2", "MRN-NONE")) == refused
    assert running.rows("rejected") == 1


def test_copies_arriving_together_are_stored_once_and_answered_alike(running: Running) -> None:
    message = adt("A04", "RACE-1", "MRN-E1")
    barrier = threading.Barrier(4)
    acks: list[bytes] = []

    def send_copy() -> None:
        barrier.wait()
        acks.append(running.send(message))

    threads = [threading.Thread(target=send_copy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(acks) == 4 and len(set(acks)) == 1
    assert read(acks[0]).code == "AA"
    assert len(events_of(running.store, "MRN-E1")) == 1
    assert running.rows("acks") == 1


def test_a_crash_after_the_commands_were_durable_replays_on_resend(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = running.ledger.record
    calls = {"n": 0}

    def crash_once(*args: Any) -> bytes | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise psycopg.OperationalError("the server closed the connection")
        return record(*args)

    monkeypatch.setattr(running.ledger, "record", crash_once)
    with pytest.raises(SendFailed, match="without an ACK"):
        running.send(adt("A04", "CRASH-1", "MRN-F1"))
    assert len(events_of(running.store, "MRN-F1")) == 1  # durable, not acknowledged
    assert read(running.send(adt("A04", "CRASH-1", "MRN-F1"))).code == "AA"
    assert len(events_of(running.store, "MRN-F1")) == 1


def _read_acks(sock: socket.socket, count: int) -> list[bytes]:
    received = b""
    while received.count(END_BLOCK) < count:
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        received += chunk
    return [block.lstrip(b"\x0b") for block in received.split(END_BLOCK)[:count]]


def test_one_patients_messages_are_applied_in_arrival_order(running: Running) -> None:
    patients = [f"MRN-ORDER-{i}" for i in range(6)]
    for i, mrn in enumerate(patients):
        assert read(running.send(adt("A04", f"ORD-REG-{i}", mrn))).code == "AA"
    updates = 12

    def pipeline(connection: int) -> list[str]:
        mine = patients[connection * 2 : connection * 2 + 2]
        messages = [
            adt("A08", f"ORD-{mrn}-{n}", mrn, family=f"Name{n:02d}")
            for n in range(updates)
            for mrn in mine
        ]
        with socket.create_connection(("127.0.0.1", running.port), timeout=60) as sock:
            sock.sendall(b"".join(frame(m) for m in messages))  # without waiting for ACKs
            acks = _read_acks(sock, len(messages))
        assert all(read(a).code == "AA" for a in acks)
        return [read(a).control_id for a in acks]

    results: dict[int, list[str]] = {}
    threads = [
        threading.Thread(target=lambda c=c: results.__setitem__(c, pipeline(c))) for c in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for connection, control_ids in results.items():
        mine = patients[connection * 2 : connection * 2 + 2]
        assert control_ids == [f"ORD-{mrn}-{n}" for n in range(updates) for mrn in mine]
    for mrn in patients:
        names = [e.payload.family_name for e in events_of(running.store, mrn)[1:]]
        assert names == [f"Name{n:02d}" for n in range(updates)]


def test_a_rejected_message_is_sealed_listed_and_replayed_through_the_cli(
    running: Running, store_settings: StoreSettings, tmp_path: Path
) -> None:
    given = running.send(adt("A08", "LATE-1", "MRN-G1", family="Secretname"))
    assert read(given).code == "AE"
    # A refusal about a known patient is sealed under that patient's key.
    assert read(running.send(adt("A04", "REG-G2", "MRN-G2"))).code == "AA"
    assert read(running.send(adt("A08", "SEX-1", "MRN-G2", sex="X"))).code == "AE"
    _, rejected_table = table_names(store_settings.store_name)
    with running.pool.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT control_id, key_id, sealed FROM {} ORDER BY id").format(
                sql.Identifier(rejected_table)
            )
        ).fetchall()
    assert [r[0] for r in rows] == ["LATE-1", "SEX-1"]
    assert rows[0][1] is None
    assert rows[1][1] == running.store.patient_id_for_mrn("MRN-G2")
    assert all(b"Secretname" not in str(r[2]).encode() and "MRN-G" not in r[2] for r in rows)

    env = {"BACKBONE_HL7_TRANSLATOR": TRANSLATOR}
    listed = backbone_on(store_settings, "hl7", "rejected", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [e["control_id"] for e in entries] == ["SEX-1", "LATE-1"]
    assert entries[1]["reason"] == "unknown patient" and entries[1]["sender"] == "REG|WARD 3"
    table = backbone_on(store_settings, "hl7", "rejected", **env)
    assert "LATE-1" in table.stdout and "MRN-G" not in table.stdout and "Secret" not in table.stdout

    late = next(e for e in entries if e["control_id"] == "LATE-1")
    still = backbone_on(store_settings, "hl7", "replay", str(late["id"]), **env)
    assert still.returncode == 1, still.stdout + still.stderr
    assert "MSA|AE|LATE-1" in still.stdout

    assert read(running.send(adt("A04", "REG-G1", "MRN-G1"))).code == "AA"
    replayed = backbone_on(store_settings, "hl7", "replay", str(late["id"]), **env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "MSA|AA|LATE-1" in replayed.stdout
    assert events_of(running.store, "MRN-G1")[-1].payload.family_name == "Secretname"
    # A resend now gets the new answer, and nothing is stored twice.
    assert read(running.send(adt("A08", "LATE-1", "MRN-G1", family="Secretname"))).code == "AA"
    assert len(events_of(running.store, "MRN-G1")) == 2
    pending = json.loads(backbone_on(store_settings, "hl7", "rejected", "--json", **env).stdout)
    assert [e["control_id"] for e in pending] == ["SEX-1"]


def test_the_send_command_prints_the_ack_and_exits_non_zero_on_refusal(
    running: Running, store_settings: StoreSettings, tmp_path: Path
) -> None:
    accepted = tmp_path / "a04.hl7"
    accepted.write_bytes(adt("A04", "CLI-1", "MRN-H1").replace(b"\r", b"\n"))
    refused = tmp_path / "a08.hl7"
    refused.write_bytes(adt("A08", "CLI-2", "MRN-NOBODY").replace(b"\r", b"\r\n"))
    port = str(running.port)

    sent = backbone_on(store_settings, "hl7", "send", str(accepted), "--port", port)
    assert sent.returncode == 0, sent.stderr
    assert "MSA|AA|CLI-1" in sent.stdout
    denied = backbone_on(store_settings, "hl7", "send", str(refused), "--port", port)
    assert denied.returncode == 1
    assert "MSA|AE|CLI-2" in denied.stdout
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        nobody = str(free.getsockname()[1])
    unreachable = backbone_on(store_settings, "hl7", "send", str(accepted), "--port", nobody)
    assert unreachable.returncode == 2
    assert "cannot reach the HL7 listener" in unreachable.stderr
