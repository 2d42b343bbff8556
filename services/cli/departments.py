"""``backbone pharmacy`` and ``backbone lab-routing``: the department consumers."""

from __future__ import annotations

from projections.engine.base import Projection
from projections.engine.service import run_projections
from services.bootstrap import Backbone
from services.cli.stopping import stop_on_signals
from services.departments.lab_routing import lab_routing, routed_flags
from services.departments.pharmacy import PROJECTION as PHARMACY


def _run(projection: Projection, backbone: Backbone) -> None:
    stop = stop_on_signals()
    try:
        run_projections((projection,), backbone.reads, backbone.projection_settings, stop)
    finally:
        backbone.close()


def pharmacy() -> None:
    """The pharmacy's verification queue, fed by the medication and patient streams."""
    _run(PHARMACY, Backbone())


def lab_routing_consumer() -> None:
    """Route critical (and, if configured, abnormal) results to the ordering physician."""
    backbone = Backbone()
    _run(lab_routing(routed_flags(backbone.settings.route_abnormal_results)), backbone)
