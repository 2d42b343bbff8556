"""The Kafka topics of the event contract: one per clinical area, defined once.

``backbone infra up`` creates them from this table and the relay routes each event
type to its area's topic with it. The names here are the contract's; a deployment's Kafka
topics are these names behind its prefix (``TopicNames``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

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

# Kafka's own rule for topic names; a prefix is the start of one.
_LEGAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_MAX_NAME = 249


@dataclass(frozen=True)
class TopicNames:
    """One deployment's Kafka topic names: its prefix (``BACKBONE_TOPIC_PREFIX``) before the
    contract's name (``clinical.patients``), so deployments sharing a cluster never read
    each other's topics. The only place a prefix is added or taken off.

    Everything inside the backbone speaks the contract's (logical) names: the event types'
    topics, projections' topics, marks, the key service's grants and the payload subkeys
    derived from them, so changing the prefix changes no key. Only what talks to Kafka (the
    relay's producer, consumers, dead letters, end offsets, topic creation, ACLs) uses the
    names this gives, and stored Kafka offsets are kept under them. An empty prefix (the
    default) keeps the documented names.
    """

    prefix: str = ""

    def __post_init__(self) -> None:
        bad = sorted(set(self.prefix) - _LEGAL)
        if bad:
            raise ValueError(
                f"topic prefix {self.prefix!r}: Kafka topic names take only letters, digits, "
                f"'.', '_' and '-' (not {''.join(bad)!r})"
            )
        longest = max(len(t.name) for t in ALL_TOPICS)
        if len(self.prefix) + longest > _MAX_NAME:
            raise ValueError(f"topic prefix longer than {_MAX_NAME - longest} characters")

    def of(self, logical: str) -> str:
        """The Kafka topic of a contract topic name in this deployment."""
        return self.prefix + logical

    def names(self, logical: Iterable[str]) -> tuple[str, ...]:
        """The Kafka topics of several contract topic names, in their order."""
        return tuple(self.of(name) for name in logical)

    def logical(self, kafka_name: str) -> str | None:
        """The contract's name of one of this deployment's Kafka topics; None for a topic
        of no deployment with this prefix."""
        if not kafka_name.startswith(self.prefix):
            return None
        return kafka_name[len(self.prefix) :] or None

    def spec(self, topic: TopicSpec) -> TopicSpec:
        """The spec as Kafka creates it here: the same settings under this deployment's name."""
        return replace(topic, name=self.of(topic.name))

    def all(self) -> tuple[TopicSpec, ...]:
        """Every topic of the contract as this deployment creates it."""
        return tuple(self.spec(t) for t in ALL_TOPICS)
