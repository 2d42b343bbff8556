"""HL7 v2: ORU^R01 (three results) over MLLP at 1 and 8 connections vs a raw MLLP echo.

Each message is for a registered patient and names an order the backbone never saw, so the
listener parses it, checks the duplicate ledger, creates the order from OBR, receives the
three results (flags computed) and answers ``AA`` only once all of it is durable. The
baseline is an MLLP server on the same box that reads each framed message and answers a
fixed ACK: what the network, the framing and the load generator cost by themselves.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.measure import Load, hammer, ratio
from bench.population import register_patients
from bench.progress import Progress
from bench.sizes import Sizes
from bench.stack import BenchStack, load_generator_core
from events.domain.envelope import SYSTEM_ACTOR

START, END = b"\x0b", b"\x1c\x0d"
CONNECTIONS = (1, 8)
ECHO_ACK = b"MSH|^~\\&|BENCH|LAB|LIS|HOSP|20260101000000||ACK^R01^ACK|1|P|2.5.1\rMSA|AA|1\r"


def oru(mrn: str, control_id: str, orderer: str) -> bytes:
    """An ORU^R01 with a basic metabolic trio for one patient, as a lab system sends it."""
    segments = (
        f"MSH|^~\\&|BENCHLAB|BENCH|BACKBONE|HOSP|20260301090000||ORU^R01^ORU_R01|{control_id}"
        "|P|2.5.1",
        f"PID|1||{mrn}^^^HOSP^MR||Bench^Patient||19700101|F",
        f"OBR|1|{control_id}|F{control_id}|2345-7^Glucose panel^LN|||20260301083000"
        f"|||||||||{orderer}",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.5||||F",
        "OBX|2|NM|2951-2^Sodium^LN||141|mmol/L|135-145||||F",
        "OBX|3|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F",
    )
    return "\r".join(segments).encode() + b"\r"


class Connection:
    """One MLLP connection: send a framed message, read the framed answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def exchange(self, message: bytes) -> bytes:
        self.sock.sendall(START + message + END)
        while END not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(END)
        return frame.removeprefix(START)

    def close(self) -> None:
        self.sock.close()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        buffer = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while END in buffer:
                _, _, buffer = buffer.partition(END)
                self.request.sendall(START + ECHO_ACK + END)


@contextmanager
def echo_server() -> Iterator[int]:
    """The raw baseline: a threaded MLLP server answering every message with a fixed ACK."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def send_load(
    port: int, connections: int, seconds: float, message: Callable[[int, int], bytes]
) -> Load:
    """``connections`` senders, each on its own connection, message after message; an
    answer other than ``AA`` counts as an error."""
    pool = [Connection(port) for _ in range(connections)]

    def send(worker: int, i: int) -> None:
        ack = pool[worker].exchange(message(worker, i))
        if b"MSA|AA|" not in ack:
            raise RuntimeError(ack.decode(errors="replace")[:200])

    try:
        with load_generator_core():
            hammer(connections, send, each=3)  # warm-up: connections, pools, caches
            return hammer(connections, send, seconds=seconds)
    finally:
        for connection in pool:
            connection.close()


def run(stack: BenchStack, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    task = progress.task("hl7: patients", 64)
    patients = register_patients(stack.store, SYSTEM_ACTOR, "hl7", 64, progress.ticker(task))
    progress.finish(task)
    mrns = [stack.store.patient(p).mrn for p in patients]
    orderer = stack.username("physician")
    run_tag = uuid.uuid4().hex[:6]
    stack.start("hl7")
    results: dict[str, Any] = {"connections": {}}
    sending = progress.task("hl7: ORU^R01 over MLLP", len(CONNECTIONS))
    try:
        for connections in CONNECTIONS:

            def message(worker: int, i: int, c: int = connections) -> bytes:
                control = f"{run_tag}{c}w{worker}n{i}"
                return oru(mrns[(worker * 7 + i) % len(mrns)], control, orderer)

            api = send_load(stack.hl7_port, connections, sizes.hl7_s, message)
            with echo_server() as port:
                raw = send_load(port, connections, sizes.hl7_s, message)
            results["connections"][str(connections)] = {
                "msg_per_s": round(api.per_s, 1),
                "raw_msg_per_s": round(raw.per_s, 1),
                "ratio": ratio(api.per_s, raw.per_s),
                "ack_p50_ms": api.p(50),
                "ack_p99_ms": api.p(99),
                "raw_p99_ms": raw.p(99),
                "errors": api.errors + raw.errors,
            }
            progress.advance(sending)
    finally:
        stack.stop("hl7")
        progress.finish(sending)
    top = results["connections"][str(CONNECTIONS[-1])]
    results.update(msg_per_s=top["msg_per_s"], ratio=top["ratio"], ack_p99_ms=top["ack_p99_ms"])
    return results
