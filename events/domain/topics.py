"""The Kafka topics of the event contract: one per clinical area, defined once.

``backbone infra up`` creates them from this table and the relay routes each event
type to its area's topic with it.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name and the settings it is created with."""

    name: str
    partitions: int
    retention_ms: int
    min_insync_replicas: int = 1
    purpose: str = ""

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(self.min_insync_replicas),
            "cleanup.policy": "delete",
        }


PATIENTS = TopicSpec(
    "clinical.patients",
    6,
    30 * DAY_MS,
    purpose="registration, demographics, allergies, merges, erasure",
)
ORDERS = TopicSpec(
    "clinical.orders", 6, 30 * DAY_MS, purpose="lab orders, specimens, cancellations"
)
RESULTS = TopicSpec(
    "clinical.results", 6, 30 * DAY_MS, purpose="results, amendments, acknowledgements"
)
MEDICATIONS = TopicSpec(
    "clinical.medications",
    6,
    30 * DAY_MS,
    purpose="prescriptions, changes, administrations, pharmacy decisions",
)
OBSERVATIONS = TopicSpec("clinical.observations", 6, 30 * DAY_MS, purpose="vital signs")
ACCESS = TopicSpec(
    "clinical.access",
    6,
    90 * DAY_MS,
    purpose="chart reads, break-glass, logins, user and care-team administration",
)
DEADLETTER = TopicSpec(
    "clinical.deadletter", 1, 90 * DAY_MS, purpose="what a consumer could not process"
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    PATIENTS,
    ORDERS,
    RESULTS,
    MEDICATIONS,
    OBSERVATIONS,
    ACCESS,
    DEADLETTER,
)
