"""The watchdog's restart policy on a fake clock and a fake process table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.supervisor import SUPERVISOR, ManagedProcess
from services.watchdog import RestartPolicy, Watchdog

RELAY = ManagedProcess("relay", ("relay",))
API = ManagedProcess("api", ("serve",))


class FakeTable:
    """Processes that crash when a test says so; starting one makes it run."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.started: list[str] = []

    def crashed(self, process: ManagedProcess) -> bool:
        return process.name in self.down

    def start(self, process: ManagedProcess) -> bool:
        self.down.discard(process.name)
        self.started.append(process.name)
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = RestartPolicy(max_restarts=5, window_s=600.0, backoff_s=1.0, max_backoff_s=8.0)


def watchdog(tmp_path: Path) -> tuple[Watchdog, FakeTable, Clock]:
    table, clock = FakeTable(), Clock()
    dog = Watchdog(table, (RELAY, API, SUPERVISOR), POLICY, clock, tmp_path / "state.json")
    return dog, table, clock


def crash_and_wait_for_restart(dog: Watchdog, table: FakeTable, clock: Clock) -> float:
    """Crash the relay; tick each 0.5 s until it is started again; the delay it waited."""
    table.down.add("relay")
    began, restarted = clock.now, len(table.started)
    while len(table.started) == restarted:
        dog.tick()
        if len(table.started) == restarted:
            clock.now += 0.5
        assert clock.now - began < 60, "never restarted"
    return clock.now - began


def test_a_crashed_process_is_restarted_after_a_backoff_that_doubles(tmp_path: Path) -> None:
    dog, table, clock = watchdog(tmp_path)
    dog.tick()
    assert table.started == []
    delays = [crash_and_wait_for_restart(dog, table, clock) for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # doubled, capped at max_backoff_s
    assert table.started == ["relay"] * 5
    assert "supervisor" not in dog.watches  # never watches itself


def test_after_five_restarts_in_the_window_it_gives_up_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dog, table, clock = watchdog(tmp_path)
    for _ in range(5):
        crash_and_wait_for_restart(dog, table, clock)
    table.down.add("relay")
    with caplog.at_level(logging.ERROR, logger="services.watchdog"):
        for _ in range(200):
            dog.tick()
            clock.now += 1
    assert table.started == ["relay"] * 5, "a sixth restart within 10 minutes"
    gave_up = [r for r in caplog.records if r.getMessage().startswith("gave up")]
    assert len(gave_up) == 1
    assert gave_up[0].__dict__["fields"]["process"] == "relay"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["relay"]["gave_up"] is True and state["relay"]["restarts_total"] == 5
    assert state["api"] == {"restarts_in_window": 0, "restarts_total": 0, "gave_up": False}


def test_restarts_older_than_the_window_no_longer_count(tmp_path: Path) -> None:
    dog, table, clock = watchdog(tmp_path)
    for _ in range(5):
        crash_and_wait_for_restart(dog, table, clock)
    clock.now += 600
    assert crash_and_wait_for_restart(dog, table, clock) == 1.0
    assert table.started == ["relay"] * 6


def test_a_process_started_again_after_a_give_up_is_watched_again(tmp_path: Path) -> None:
    dog, table, clock = watchdog(tmp_path)
    for _ in range(5):
        crash_and_wait_for_restart(dog, table, clock)
    table.down.add("relay")
    dog.tick()
    assert dog.watches["relay"].gave_up
    table.down.discard("relay")  # `backbone up` started it again
    dog.tick()
    assert not dog.watches["relay"].gave_up


def test_only_the_crashed_process_is_restarted(tmp_path: Path) -> None:
    dog, table, clock = watchdog(tmp_path)
    table.down.add("api")
    for _ in range(4):
        dog.tick()
        clock.now += 0.5
    assert table.started == ["api"]
