"""``backbone pharmacy`` and ``backbone lab-routing``: the department consumers."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from projections.engine.base import Projection
from projections.engine.database import read_pool
from projections.engine.service import run_projections
from projections.settings import get_projection_settings
from services.departments.lab_routing import CRITICAL, lab_routing
from services.departments.pharmacy import PROJECTION as PHARMACY
from services.settings import ServiceSettings, get_settings


def routed_flags(settings: ServiceSettings) -> frozenset[str]:
    return frozenset(CRITICAL + (("H", "L") if settings.route_abnormal_results else ()))


def _run(projection: Projection) -> None:
    settings = get_projection_settings()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run_projections((projection,), read_pool(settings), settings, stop)


def pharmacy() -> None:
    """The pharmacy's verification queue, fed by the medication and patient streams."""
    _run(PHARMACY)


def lab_routing_consumer() -> None:
    """Route critical (and, if configured, abnormal) results to the ordering physician."""
    _run(lab_routing(routed_flags(get_settings())))
