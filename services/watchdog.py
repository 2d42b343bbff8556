"""``backbone supervise``: the watchdog that restarts a managed process that crashed.

``backbone up`` starts it last and ``backbone down`` stops it first. Every check it looks at
each managed process that has a pid file (``backbone up`` started it and nobody stopped it):
one whose process is gone has crashed. It is started again after a backoff (``backoff_s``
doubled for each restart already in the window, at most ``max_backoff_s``), at most
``max_restarts`` times in ``window_s``; past that the watchdog gives up on it, says so, and
leaves it down until ``backbone up`` starts it again. Each crash, restart and give-up is one
JSON log line (``.data/logs/supervisor.log`` once ``backbone up`` started it), and its view of
each process is in ``.data/run/supervisor.json`` for ``backbone status``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.settings import ServiceSettings
from services.supervisor import SUPERVISOR, ManagedProcess, Supervisor

log = logging.getLogger(__name__)


class ProcessTable(Protocol):
    """What the watchdog needs of the process table (``Supervisor``; a fake in tests)."""

    def crashed(self, process: ManagedProcess) -> bool: ...

    def start(self, process: ManagedProcess) -> bool: ...


@dataclass(frozen=True)
class RestartPolicy:
    """How often a crashed process is started again, and when the watchdog gives up."""

    max_restarts: int = 5
    window_s: float = 600.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    @classmethod
    def of(cls, settings: ServiceSettings) -> RestartPolicy:
        return cls(
            settings.supervisor_max_restarts,
            settings.supervisor_restart_window_s,
            settings.supervisor_backoff_s,
            settings.supervisor_max_backoff_s,
        )

    def delay_s(self, restarts_in_window: int) -> float:
        return float(min(self.backoff_s * 2**restarts_in_window, self.max_backoff_s))


@dataclass
class Watch:
    """The watchdog's memory of one process."""

    restarts: deque[float] = field(default_factory=deque)
    crashed_at: float | None = None
    gave_up: bool = False
    total_restarts: int = 0


class Watchdog:
    """Checks the managed processes and restarts those that crashed, within the policy."""

    def __init__(
        self,
        table: ProcessTable,
        processes: Sequence[ManagedProcess],
        policy: RestartPolicy,
        clock: Callable[[], float] = time.monotonic,
        state_file: Path | None = None,
    ) -> None:
        self.table = table
        self.processes = tuple(p for p in processes if p != SUPERVISOR)
        self.policy = policy
        self.clock = clock
        self.state_file = state_file
        self.watches = {p.name: Watch() for p in self.processes}

    @classmethod
    def of(cls, settings: ServiceSettings) -> Watchdog:
        supervisor = Supervisor(settings)
        return cls(
            supervisor,
            supervisor.processes,
            RestartPolicy.of(settings),
            state_file=state_path(settings),
        )

    def tick(self) -> None:
        """Look at every process once; restart or give up on those that crashed."""
        for process in self.processes:
            self._check(process, self.watches[process.name])
        self._write_state()

    def _check(self, process: ManagedProcess, watch: Watch) -> None:
        if not self.table.crashed(process):
            # Running (or stopped on purpose): a process `backbone up` started again after a
            # give-up is watched again.
            watch.crashed_at, watch.gave_up = None, False
            return
        if watch.gave_up:
            return
        now = self.clock()
        while watch.restarts and now - watch.restarts[0] >= self.policy.window_s:
            watch.restarts.popleft()
        fields: dict[str, Any] = {
            "process": process.name,
            "restarts_in_window": len(watch.restarts),
            "window_s": self.policy.window_s,
        }
        if len(watch.restarts) >= self.policy.max_restarts:
            watch.gave_up = True
            log.error("gave up restarting a crashed process", extra={"fields": fields})
            return
        delay = self.policy.delay_s(len(watch.restarts))
        if watch.crashed_at is None:
            watch.crashed_at = now
            log.warning("process crashed", extra={"fields": {**fields, "restart_in_s": delay}})
        if now - watch.crashed_at < delay:
            return
        self.table.start(process)
        watch.restarts.append(now)
        watch.crashed_at = None
        watch.total_restarts += 1
        log.warning(
            "restarted a crashed process",
            extra={"fields": {**fields, "restarts_in_window": len(watch.restarts)}},
        )

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            name: {
                "restarts_in_window": len(w.restarts),
                "restarts_total": w.total_restarts,
                "gave_up": w.gave_up,
            }
            for name, w in self.watches.items()
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Check every ``interval_s`` until ``stop``."""
        log.info(
            "supervising",
            extra={"fields": {"processes": [p.name for p in self.processes]}},
        )
        while not stop.is_set():
            self.tick()
            stop.wait(interval_s)
        log.info("supervisor stopped")


def state_path(settings: ServiceSettings) -> Path:
    """Where the watchdog keeps its view of each process."""
    return settings.data_dir / "run" / "supervisor.json"


def read_state(settings: ServiceSettings) -> dict[str, dict[str, Any]]:
    """The watchdog's last view of each process (empty if it never ran)."""
    try:
        loaded = json.loads(state_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
