"""MLLP over TLS: a client certificate from the CA per sending system, its common name the
one MSH-3|MSH-4 its connections may speak for; on an isolated store and a CA of its own."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from events.application import ClinicalStore
from events.settings import StoreSettings
from services.bootstrap import service_pool
from services.hl7.client import SendFailed, read, send
from services.hl7.intake import Intake
from services.hl7.ledger import Ledger
from services.hl7.listener import Listener
from services.hl7.settings import HL7Settings
from services.local_stack.certificates import ensure_certificates, ensure_hl7_sender
from services.tls import client_context
from tests.cli import backbone
from tests.integration.test_hl7_listener import adt, field_of, translate

pytestmark = pytest.mark.integration
SENDER = ("REG", "WARD 3")  # MSH-3, MSH-4 of the tests' ADT messages


@dataclass
class Secured:
    """A TLS listener on a free port and the CA behind it."""

    port: int
    tls_dir: Path
    store: ClinicalStore

    def client(self, application: str | None = None, facility: str = "") -> ssl.SSLContext:
        """A sender's TLS: verifies the listener; presents the sender's certificate if named."""
        if application is None:
            return client_context(self.tls_dir / "ca.pem")
        pair, _ = ensure_hl7_sender(self.tls_dir, application, facility)
        return client_context(self.tls_dir / "ca.pem", pair.cert, pair.key)

    def send(self, message: bytes, tls: ssl.SSLContext | None) -> bytes:
        return send(message, "127.0.0.1", self.port, timeout_s=30, tls=tls)

    def events(self, mrn: str) -> list[object]:
        return list(self.store.events_of(self.store.patient_id_for_mrn(mrn)))


@pytest.fixture
def secured(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> Iterator[Secured]:
    tls_dir = tmp_path / "tls"
    ensure_certificates(tls_dir, [])
    pool = service_pool(store_settings)
    ledger = Ledger(pool, store_settings.store_name)
    ledger.create()
    settings = HL7Settings(port=0, workers=2, drain_timeout_s=5, tls=True, tls_dir=tls_dir)
    listener = Listener(Intake(pg_store, ledger, translate), settings)
    loop, stop, ready = asyncio.new_event_loop(), asyncio.Event(), threading.Event()
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
        yield Secured(ports[0], tls_dir, pg_store)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        pool.close()


def test_a_sender_whose_certificate_names_it_is_answered_aa(secured: Secured) -> None:
    ack = secured.send(adt("A04", "TLS-1", "MRN-TLS-1"), secured.client(*SENDER))

    assert (read(ack).code, read(ack).control_id) == ("AA", "TLS-1")
    assert len(secured.events("MRN-TLS-1")) == 1


def test_a_certificate_naming_another_sender_is_answered_ar_and_nothing_is_kept(
    secured: Secured,
) -> None:
    impostor = secured.send(adt("A04", "TLS-2", "MRN-TLS-2"), secured.client("LAB", "HOSP"))

    assert (read(impostor).code, read(impostor).control_id) == ("AR", "TLS-2")
    assert field_of(impostor, "ERR", 2) == "MSH^1^3"
    assert "(REG, WARD 3)" in read(impostor).reason and "(LAB, HOSP)" in read(impostor).reason
    assert secured.events("MRN-TLS-2") == []
    # Nothing was recorded under the sender it claimed: the real one's message is its own.
    real = secured.send(adt("A04", "TLS-2", "MRN-TLS-2"), secured.client(*SENDER))
    assert read(real).code == "AA"
    assert len(secured.events("MRN-TLS-2")) == 1


def test_without_a_client_certificate_the_handshake_is_refused(secured: Secured) -> None:
    anonymous = secured.client()
    with pytest.raises(SendFailed):  # TLS 1.3: the refusal shows on the client's first read
        secured.send(adt("A04", "TLS-3", "MRN-TLS-3"), anonymous)
    with pytest.raises(SendFailed):  # plain MLLP to a TLS port: no ACK either
        secured.send(adt("A04", "TLS-4", "MRN-TLS-4"), None)

    anonymous.maximum_version = ssl.TLSVersion.TLSv1_2  # the handshake itself fails
    with (
        socket.create_connection(("127.0.0.1", secured.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        anonymous.wrap_socket(raw, server_hostname="127.0.0.1")
    assert secured.events("MRN-TLS-3") == secured.events("MRN-TLS-4") == []


def test_the_commands_make_a_senders_certificate_and_send_with_it(
    secured: Secured, tmp_path: Path
) -> None:
    env = {**os.environ, "BACKBONE_TLS_DIR": str(secured.tls_dir)}
    made = backbone("certs", "hl7-sender", *SENDER, env=env)
    assert made.returncode == 0, made.stderr
    paths = dict(line.split(":", 1) for line in made.stdout.splitlines()[1:])
    message = tmp_path / "register.hl7"
    message.write_bytes(adt("A04", "TLS-CLI", "MRN-TLS-CLI").replace(b"\r", b"\n"))

    sent = backbone(
        *("hl7", "send", str(message), "--port", str(secured.port), "--tls"),
        *("--cert", paths["certificate"].strip(), "--key", paths["key"].strip()),
        env=env,
    )

    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "MSA|AA|TLS-CLI" in sent.stdout
