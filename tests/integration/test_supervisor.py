"""``backbone supervise`` with real processes: a SIGKILLed relay is started again, and after
its limit of restarts the supervisor gives up on it and says so. Its own data directory: the
shared stack's processes are never touched."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.application import ClinicalStore
from events.settings import StoreSettings
from services.local_stack.processes import pid_alive, read_pid, terminate, wait_until
from services.settings import ServiceSettings
from tests.integration.test_relay_failover import instance_states

pytestmark = pytest.mark.integration


class Stack:
    """A data directory with a relay started as ``backbone up`` would, and its supervisor."""

    def __init__(self, store: StoreSettings, data_dir: Path) -> None:
        self.run_dir, self.log_dir = data_dir / "run", data_dir / "logs"
        self.run_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True)
        self.env = {
            **os.environ,
            "BACKBONE_DATA_DIR": str(data_dir),
            "BACKBONE_STORE_NAME": store.store_name,
            "BACKBONE_MASTER_KEY_FILE": str(store.master_key_file),
            "BACKBONE_WITNESS_DIR": str(store.witness_dir),
            "BACKBONE_DATABASE_SERVICE_ROLES": "false",  # the test's role owns its tables
            "BACKBONE_SUPERVISOR_MAX_RESTARTS": "2",
            "BACKBONE_SUPERVISOR_BACKOFF_S": "0.2",
            "BACKBONE_SUPERVISOR_CHECK_INTERVAL_S": "0.2",
        }

    def start(self, name: str, *argv: str) -> int:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *argv],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.run_dir / f"{name}.pid").write_text(str(child.pid))
        return child.pid

    def pid(self, name: str) -> int | None:
        return read_pid(self.run_dir / f"{name}.pid")

    def supervisor_log(self) -> list[dict[str, Any]]:
        entries = []
        for line in (self.log_dir / "supervisor.log").read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries


def kill(pid: int) -> None:
    """SIGKILL; the first relay is this test's child, reaped here as init would reap it."""
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@pytest.fixture
def managed(store_settings: StoreSettings, tmp_path: Path) -> Iterator[Stack]:
    started = Stack(store_settings, tmp_path / "data")
    yield started
    for name in ("supervisor", "relay"):  # the supervisor first: it restarts the relay
        pid = started.pid(name)
        if pid is not None:
            terminate(pid, grace_s=15)


def test_a_sigkilled_relay_is_restarted_and_after_the_limit_left_down_with_a_log_line(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    managed: Stack,
) -> None:
    del pg_store  # the store exists, its tables made by the test's role
    stack = managed
    first = stack.start("relay", "relay")
    stack.start("supervisor", "supervise")
    active = f"{socket.gethostname()}:{first}"
    assert wait_until(
        lambda: (
            getattr(instance_states(settings, store_settings).get(active), "state", "") == "active"
        ),
        30,
        0.1,
    ), "the relay never became active"

    pids = [first]
    for _ in range(2):
        kill(pids[-1])
        assert wait_until(lambda: stack.pid("relay") not in (None, *pids), 15, 0.1), (
            "the supervisor did not restart the killed relay"
        )
        pids.append(stack.pid("relay") or 0)
        assert pid_alive(pids[-1])
    restarted = f"{socket.gethostname()}:{pids[-1]}"
    assert wait_until(
        lambda: (
            getattr(instance_states(settings, store_settings).get(restarted), "state", "")
            == "active"
        ),
        30,
        0.1,
    ), "the restarted relay never became active"

    kill(pids[-1])  # a third crash within the window: past the limit of 2
    assert wait_until(
        lambda: any(e["msg"].startswith("gave up") for e in stack.supervisor_log()), 15, 0.1
    ), stack.supervisor_log()
    assert not wait_until(lambda: stack.pid("relay") != pids[-1], 2, 0.2), "restarted anyway"

    lines = stack.supervisor_log()
    restarts = [e for e in lines if e["msg"] == "restarted a crashed process"]
    assert [(e["process"], e["restarts_in_window"]) for e in restarts] == [
        ("relay", 1),
        ("relay", 2),
    ]
    gave_up = [e for e in lines if e["msg"].startswith("gave up")]
    assert [(e["process"], e["level"]) for e in gave_up] == [("relay", "error")]
    state = json.loads((stack.run_dir / "supervisor.json").read_text())
    assert state["relay"]["gave_up"] is True and state["relay"]["restarts_total"] == 2

    status = subprocess.run(
        [sys.executable, "-m", "services.cli", "status", "--json"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.stdout.startswith("["), status.stderr[-2000:]
    components = {c["name"]: c for c in json.loads(status.stdout)}
    assert components["supervisor"]["up"], components["supervisor"]
    assert "gave up on: relay" in components["supervisor"]["detail"]
    assert not components["relay"]["up"]
    assert status.returncode == 1
