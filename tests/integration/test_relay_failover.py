"""Two relays on one store, and a relay whose database sessions keep dying: real processes,
real PostgreSQL and Kafka. The shared PostgreSQL is never stopped: an outage is the relay's
sessions terminated by ``pg_terminate_backend``, again and again, for five seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from events.application import ClinicalStore
from events.settings import StoreSettings
from services.bootstrap import service_pool
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.relay.leadership import Leadership, LeadershipLost, RelayInstance, relay_instances
from services.settings import ServiceSettings
from services.status import relay_name
from tests.integration.contract_reader import ContractReader
from tests.integration.relaying import relay_status
from tests.integration.test_relay import (
    ours,
    reader,
    record_vitals_round_robin,
    register_patients,
    stored_positions,
)

pytestmark = pytest.mark.integration
__all__ = ["reader"]  # the fixture, shared with the relay tests
BATCH = 50


class RelayProcess:
    """``backbone relay`` on the test's store, its JSON log lines in a file."""

    def __init__(self, store: StoreSettings, log: Path, **env: str) -> None:
        self.log = log
        self.opened_at = time.time()
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "relay"],
                env={
                    **os.environ,
                    "BACKBONE_STORE_NAME": store.store_name,
                    "BACKBONE_MASTER_KEY_FILE": str(store.master_key_file),
                    "BACKBONE_WITNESS_DIR": str(store.witness_dir),
                    "BACKBONE_RELAY_BATCH_SIZE": str(BATCH),
                    # The shortest flush timeout, so the takeover grace is 3 s.
                    "BACKBONE_RELAY_FLUSH_TIMEOUT_S": "2",
                    "BACKBONE_RELAY_STANDBY_POLL_S": "0.5",
                    # The test's role owns the test store's tables.
                    "BACKBONE_DATABASE_SERVICE_ROLES": "false",
                    **env,
                },
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.instance = f"{socket.gethostname()}:{self.process.pid}"

    def lines(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("msg") == message]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def relays() -> Iterator[list[RelayProcess]]:
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        relay.stop()


class Writer:
    """Vitals for the test's patients, a few every 50 ms, in a thread, until stopped."""

    def __init__(self, store: ClinicalStore, patients: list[UUID]) -> None:
        self.store, self.patients = store, patients
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        while not self.stop.is_set():
            record_vitals_round_robin(self.store, self.patients, 3)
            time.sleep(0.05)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def instance_states(settings: ServiceSettings, store: StoreSettings) -> dict[str, RelayInstance]:
    pool = service_pool(store, max_size=1)
    try:
        name = relay_name(settings, store)
        return {i.instance: i for i in relay_instances(pool, name)}
    finally:
        pool.close()


def state_of(settings: ServiceSettings, store: StoreSettings, relay: RelayProcess) -> str:
    row = instance_states(settings, store).get(relay.instance)
    return row.state if row else "not started"


def test_two_relays_one_publishes_and_the_other_takes_over_within_seconds_of_a_sigkill(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
    relays: list[RelayProcess],
    tmp_path: Path,
) -> None:
    patients = register_patients(pg_store, 40, "F")
    with Writer(pg_store, patients):
        relays.append(RelayProcess(store_settings, tmp_path / "first.log"))
        first = relays[0]
        assert wait_until(lambda: state_of(settings, store_settings, first) == "active", 30, 0.1)
        relays.append(RelayProcess(store_settings, tmp_path / "second.log"))
        second = relays[1]
        assert wait_until(lambda: state_of(settings, store_settings, second) == "standby", 30, 0.1)
        time.sleep(2.0)  # both running, the first publishing what the writer writes
        assert state_of(settings, store_settings, second) == "standby"
        assert first.logged("relay active") and not second.logged("relay active")

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        killed, killed_wall = time.monotonic(), time.time()
        killed_at = relay_status(settings, store_settings)[0].position
        took_over = wait_until(
            lambda: relay_status(settings, store_settings)[0].position > killed_at, 20, 0.05
        )
        took_over_s = time.monotonic() - killed
        time.sleep(1.0)  # the writer keeps writing through the takeover

    assert took_over, "the standby never took over"
    assert took_over_s < 10, f"the standby took {took_over_s:.1f} s to take over"
    assert state_of(settings, store_settings, second) == "active"
    expected = stored_positions(pg_store)
    total = sum(len(v) for v in expected.values())
    arrived = reader.poll_until(
        lambda r: len(r.event_ids()) >= total, 60, ours({str(p) for p in patients})
    )
    assert arrived, f"only {len(reader.event_ids())} of {total} events arrived"
    assert reader.first_seen_positions() == expected  # every event, per patient in order
    # Published twice, at most: what the killed relay sent after its last checkpoint.
    duplicates = reader.duplicate_positions()
    assert all(killed_at < p <= killed_at + BATCH for p in duplicates), (killed_at, duplicates)
    # The second published nothing before it led: its first line as leader came after the kill.
    active_at = datetime.fromisoformat(second.logged("relay active")[0]["ts"]).timestamp()
    assert second.logged("another relay is active; standing by")
    assert active_at >= killed_wall - 0.5


def terminate_backends(store: StoreSettings, application: str, seconds: float) -> int:
    """Terminate every session of ``application`` every 50 ms for ``seconds``; how many."""
    terminated = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(store.database_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application,),
            ).fetchall()
            terminated += sum(1 for (done,) in rows if done)
            time.sleep(0.05)
    return terminated


def test_the_relay_rides_out_its_database_sessions_dying_for_five_seconds(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    reader: ContractReader,
    relays: list[RelayProcess],
    tmp_path: Path,
) -> None:
    application = f"relay-outage-{uuid.uuid4().hex[:8]}"
    patients = register_patients(pg_store, 20, "O")
    relays.append(
        RelayProcess(
            store_settings,
            tmp_path / "relay.log",
            PGAPPNAME=application,
            BACKBONE_RELAY_MAX_BACKOFF_S="1",
        )
    )
    relay = relays[0]
    assert wait_until(lambda: state_of(settings, store_settings, relay) == "active", 30, 0.1)
    with Writer(pg_store, patients):
        time.sleep(1.0)
        terminated = terminate_backends(store_settings, application, 5.0)
        time.sleep(1.0)
    assert terminated > 0, "no session of the relay was terminated"
    assert relay.process.poll() is None, "the relay died of the outage"

    expected = stored_positions(pg_store)
    total = sum(len(v) for v in expected.values())
    arrived = reader.poll_until(
        lambda r: len(r.event_ids()) >= total, 60, ours({str(p) for p in patients})
    )
    assert arrived, f"only {len(reader.event_ids())} of {total} events arrived"
    assert reader.first_seen_positions() == expected
    status, head = relay_status(settings, store_settings)
    assert wait_until(
        lambda: relay_status(settings, store_settings)[0].state == "running", 10, 0.1
    ), status
    assert head >= max(max(v) for v in expected.values())

    unreachable = relay.logged("database unreachable; retrying")
    assert unreachable, [e.get("msg") for e in relay.lines()]
    assert unreachable[0]["error"].startswith("PostgreSQL unreachable: ")
    assert relay.logged("database reachable again")
    text = relay.log.read_text()
    assert not any(str(p) in text for p in patients), "a patient id in the relay's log"


def test_a_leader_whose_lock_session_is_terminated_steps_down_and_the_other_may_lead(
    store_settings: StoreSettings, stack: LocalStack
) -> None:
    del stack
    url, name = store_settings.database_url, f"relay:{store_settings.store_name}"
    first = Leadership(url, name, "first", takeover_grace_s=30.0)
    second = Leadership(url, name, "second", takeover_grace_s=30.0)
    try:
        assert first.acquire() and not second.acquire()
        first.verify()
        with psycopg.connect(url, autocommit=True) as admin:
            sessions = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s AND objid = %s AND objsubid = 1",
                first._locks_row,
            ).fetchall()
            assert len(sessions) == 1  # one session holds the store's relay lock
            admin.execute("SELECT pg_terminate_backend(%s)", (sessions[0][0],))
        with pytest.raises(LeadershipLost):
            first.verify()
        assert second.acquire()
        # The first was active a moment ago: the second waits out its last batch.
        assert 25 < second.grace_left_s() <= 30
        assert not first.acquire()
    finally:
        first.close()
        second.close()
