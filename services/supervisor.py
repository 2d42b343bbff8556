"""Background processes of ``make run``: the key service, relay, consumers, HL7 and the API.

Each runs detached as ``backbone <command>``, with a pid file under ``.data/run`` and JSON
log lines in ``.data/logs/<name>.log``; starting one that runs is a no-op. The last one,
``backbone supervise`` (``services.watchdog``), restarts the others when they crash: a pid
file whose process is gone. Stopping one removes its pid file first, so it is not restarted.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from services.local_stack.processes import pid_alive, read_pid, terminate
from services.settings import ServiceSettings


@dataclass(frozen=True)
class ManagedProcess:
    """A long-running ``backbone`` subcommand that ``make run`` starts."""

    name: str
    argv: tuple[str, ...]


PROJECTIONS = ManagedProcess("projections", ("project",))
# Started last, stopped first: it never restarts what ``backbone down`` is stopping.
SUPERVISOR = ManagedProcess("supervisor", ("supervise",))
PROCESSES: tuple[ManagedProcess, ...] = (
    # Payload keys for the consumers below (they wait for it if it starts after them).
    ManagedProcess("keys", ("keys", "serve")),
    ManagedProcess("relay", ("relay",)),
    PROJECTIONS,
    ManagedProcess("pharmacy", ("pharmacy",)),
    ManagedProcess("lab-routing", ("lab-routing",)),
    ManagedProcess("hl7", ("hl7",)),
    ManagedProcess("api", ("serve",)),
    SUPERVISOR,
)


class Supervisor:
    """Starts, stops and checks the managed processes."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.run_dir = settings.data_dir / "run"
        self.log_dir = settings.data_dir / "logs"

    @property
    def processes(self) -> tuple[ManagedProcess, ...]:
        """The managed processes, the projections as ``BACKBONE_PROJECTION_INSTANCES``
        instances (``projections``, ``projections-2``, …) sharing one consumer group per
        projection; instances started by an earlier ``up`` with more are still listed, so
        that ``down`` and ``status`` see every one."""
        numbers = (f.stem.rsplit("-", 1)[1] for f in self.run_dir.glob(f"{PROJECTIONS.name}-*.pid"))
        running = max((int(n) for n in numbers if n.isdigit()), default=1)
        count = max(self.settings.projection_instances, running)
        return tuple(
            instance
            for process in PROCESSES
            for instance in (instances(process, count) if process is PROJECTIONS else (process,))
        )

    def _pid_file(self, process: ManagedProcess) -> Path:
        return self.run_dir / f"{process.name}.pid"

    def pid(self, process: ManagedProcess) -> int | None:
        pid = read_pid(self._pid_file(process))
        return pid if pid is not None and pid_alive(pid) else None

    def crashed(self, process: ManagedProcess) -> bool:
        """Started and not stopped (its pid file is there), yet its process is gone."""
        pid = read_pid(self._pid_file(process))
        return pid is not None and not pid_alive(pid)

    def start(self, process: ManagedProcess) -> bool:
        if self.pid(process) is not None:
            return False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{process.name}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *process.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid_file(process).write_text(str(child.pid))
        return True

    def stop(self, process: ManagedProcess) -> bool:
        pid = self.pid(process)
        self._pid_file(process).unlink(missing_ok=True)  # first: the watchdog leaves it be
        if pid is None:
            return False
        terminate(pid, grace_s=20)
        return True

    def start_all(self) -> list[str]:
        """Start what is not running; instances beyond the wanted count (an earlier ``up``
        asked for more) are stopped."""
        wanted = instances(PROJECTIONS, self.settings.projection_instances)
        extra = [p for p in self.processes if p.argv == PROJECTIONS.argv and p not in wanted]
        for process in extra:
            self.stop(process)
        return [p.name for p in self.processes if p not in extra and self.start(p)]

    def stop_all(self) -> list[str]:
        return [p.name for p in reversed(self.processes) if self.stop(p)]


def instances(process: ManagedProcess, count: int) -> tuple[ManagedProcess, ...]:
    """``count`` instances of ``process``: the first keeps its name, the others ``-2``, …"""
    more = (ManagedProcess(f"{process.name}-{n}", process.argv) for n in range(2, count + 1))
    return (process, *more)
