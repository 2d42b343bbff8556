"""``backbone supervise``: restart the processes ``backbone up`` started when they crash."""

from __future__ import annotations

from services.cli.stopping import stop_on_signals
from services.settings import get_settings
from services.watchdog import Watchdog


def supervise() -> None:
    """Restart a crashed managed process, with backoff, at most
    BACKBONE_SUPERVISOR_MAX_RESTARTS times in BACKBONE_SUPERVISOR_RESTART_WINDOW_S; started
    by `backbone up`, stopped by `backbone down`."""
    settings = get_settings()
    stop = stop_on_signals()
    Watchdog.of(settings).run(stop, settings.supervisor_check_interval_s)
