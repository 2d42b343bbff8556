"""Who talks to Kafka, and what each may do: one principal per service, least privilege.

One table drives the client certificates ``make setup`` makes (a certificate's common name
is its principal), the Kafka ACLs ``backbone infra up`` grants through KRaft's
``StandardAuthorizer``, the key service's scoping (a principal gets the payload keys of the
topics it may read, nothing else) and ``backbone kafka client-config NAME``.

Consumer groups are granted by prefix: a principal's groups start with its own name and a
dot, or with the prefixes listed (``projection.`` for the projections runner, whose groups
are ``<prefix>.<schema>.<projection>``, ``BACKBONE_CONSUMER_GROUP_PREFIX`` being
``projection`` or ``projection.<something>``).
``services/local_stack/kafka_acls.py`` turns the table into ACLs: producers get Write and
Describe on their topics, consumers Read and Describe on theirs and on their group prefixes,
describers Describe only; the operator and the broker are super users and need none.
Topics here are the contract's names; the ACLs are granted on each deployment's topics
(``BACKBONE_TOPIC_PREFIX`` before them) and the key service checks the contract name.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.domain.topics import (
    ACCESS,
    DEADLETTER,
    MEDICATIONS,
    OBSERVATIONS,
    ORDERS,
    PATIENTS,
    RESULTS,
)

CLINICAL_TOPICS = tuple(
    t.name for t in (PATIENTS, ORDERS, RESULTS, MEDICATIONS, OBSERVATIONS, ACCESS)
)


@dataclass(frozen=True)
class Principal:
    """A service's identity on Kafka and the key service, and its grants."""

    name: str
    purpose: str
    produces: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    group_prefixes: tuple[str, ...] = ()
    # Reads every topic and group for diagnosis (the operator), and is the cluster's super
    # user for administration (topics, ACLs).
    operator: bool = False
    # Topics it may only describe (their partitions and end offsets, not their messages).
    describes: tuple[str, ...] = ()

    def may_join_groups(self) -> bool:
        """Whether its groups are granted Read (a consumer) or only Describe (lag readers)."""
        return bool(self.reads)

    @property
    def groups(self) -> tuple[str, ...]:
        """The prefixes of the consumer groups it may use (or describe)."""
        return (f"{self.name}.", *self.group_prefixes)


PRINCIPALS: tuple[Principal, ...] = (
    Principal("relay", "the outbox relay: the only producer of clinical.*", CLINICAL_TOPICS),
    Principal(
        "projections",
        "the read models behind the API",
        (DEADLETTER.name,),
        CLINICAL_TOPICS,
        ("projection.",),
    ),
    Principal(
        "pharmacy",
        "the pharmacy verification queue",
        (DEADLETTER.name,),
        (PATIENTS.name, MEDICATIONS.name, OBSERVATIONS.name),
        ("projection.",),
    ),
    Principal(
        "lab-routing",
        "abnormal and critical results to the ordering physician",
        (DEADLETTER.name,),
        (PATIENTS.name, ORDERS.name, RESULTS.name),
        ("projection.",),
    ),
    # The API reads nothing: its status page describes topics and groups (lag), no data.
    Principal(
        "api",
        "readiness: topic ends and consumer lag",
        group_prefixes=("projection.",),
        describes=(*CLINICAL_TOPICS, DEADLETTER.name),
    ),
    Principal(
        "department-example",
        "docs/examples/department_consumer.py, a department's own consumer",
        (DEADLETTER.name,),
        (PATIENTS.name, MEDICATIONS.name),
        ("pharmacy.", "department."),
    ),
    Principal("operator", "diagnosis and administration", operator=True),
)
BY_NAME: dict[str, Principal] = {p.name: p for p in PRINCIPALS}


def principal(name: str) -> Principal:
    """The principal of that name, or ValueError naming the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise ValueError(f"no principal {name!r}; the principals are: {known}") from None


def may_read(name: str, topic: str) -> bool:
    """Whether the principal may read the topic (the key service asks this)."""
    found = BY_NAME.get(name)
    return found is not None and (found.operator or topic in found.reads)
