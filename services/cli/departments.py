"""``backbone pharmacy`` and ``backbone lab-routing``: the department consumers."""

from __future__ import annotations

from projections.engine.base import Projection
from projections.engine.service import run_projections
from services.bootstrap import Backbone
from services.cli.stopping import stop_on_signals
from services.departments.escalation import EscalationSweep, run_escalations
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
    _run(PHARMACY, Backbone(kafka_principal="pharmacy", database_role="departments"))


def lab_routing_consumer() -> None:
    """Route critical (and, if configured, abnormal) results to the ordering physician, and
    escalate critical ones left unacknowledged to the rest of the care team."""
    backbone = Backbone(kafka_principal="lab-routing", database_role="departments")
    settings = backbone.settings
    stop = stop_on_signals()
    sweep = EscalationSweep(backbone.store, backbone.reads, settings.critical_escalation_after)
    sweeper = run_escalations(sweep, stop, settings.critical_escalation_sweep_s)
    try:
        run_projections(
            (lab_routing(routed_flags(settings.route_abnormal_results)),),
            backbone.reads,
            backbone.projection_settings,
            stop,
        )
    finally:
        stop.set()
        sweeper.join(timeout=30)
        backbone.close()
