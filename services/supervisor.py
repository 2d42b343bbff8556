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


# Started last, stopped first: it never restarts what ``backbone down`` is stopping.
SUPERVISOR = ManagedProcess("supervisor", ("supervise",))
PROCESSES: tuple[ManagedProcess, ...] = (
    # Payload keys for the consumers below (they wait for it if it starts after them).
    ManagedProcess("keys", ("keys", "serve")),
    ManagedProcess("relay", ("relay",)),
    ManagedProcess("projections", ("project",)),
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
        return [p.name for p in PROCESSES if self.start(p)]

    def stop_all(self) -> list[str]:
        return [p.name for p in reversed(PROCESSES) if self.stop(p)]
