"""How big each scenario runs: ``quick`` (a CI smoke run) and ``full`` (``make bench``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Workload sizes for one bench run."""

    name: str
    import_patients: int  # bulk-imported registrations (append's batch path)
    append_each: int  # single-event commands per writer (8 writers)
    relay_load_rate: float  # commands/s offered while the relay lag is sampled
    relay_load_s: float
    e2e_rates: tuple[float, ...]  # offered commands/s for end-to-end latency
    e2e_s: float
    chart_patients: int  # the population chart reads pick from
    chart_clients: int
    chart_s: float
    scale_levels: tuple[int, ...]  # stored events at which scale is measured
    scale_commands: int  # single-event commands per writer at each scale level
    scale_chart_s: float
    hl7_s: float  # seconds of ORU^R01 per connection count


QUICK = Sizes(
    name="quick",
    import_patients=300,
    append_each=15,
    relay_load_rate=50,
    relay_load_s=1.0,
    e2e_rates=(50, 200),
    e2e_s=1.0,
    chart_patients=200,
    chart_clients=32,
    chart_s=1.0,
    scale_levels=(2_000, 4_000),
    scale_commands=5,
    scale_chart_s=0.5,
    hl7_s=1.0,
)

FULL = Sizes(
    name="full",
    import_patients=10_000,
    append_each=400,
    relay_load_rate=200,
    relay_load_s=10.0,
    e2e_rates=(50, 200),
    e2e_s=15.0,
    chart_patients=10_000,
    chart_clients=32,
    chart_s=15.0,
    scale_levels=(10_000, 100_000, 1_000_000),
    scale_commands=100,
    scale_chart_s=5.0,
    hl7_s=10.0,
)
