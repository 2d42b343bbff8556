"""The whole local stack: bring PostgreSQL and Kafka up together, down together, check both."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.local_stack.kafka import LocalKafka
from services.local_stack.kafka_acls import AclChanges
from services.local_stack.postgres import Health, LocalPostgres
from services.settings import ServiceSettings


@dataclass
class UpReport:
    """What ``up`` did, so the CLI can say it and a second ``up`` can show it did nothing."""

    started: list[str] = field(default_factory=list)
    created_topics: list[str] = field(default_factory=list)
    acls: AclChanges = field(default_factory=lambda: AclChanges(0, 0))

    @property
    def changed(self) -> bool:
        return bool(self.started or self.created_topics or self.acls.changed)


class LocalStack:
    """The local PostgreSQL cluster and Kafka broker as one unit."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.postgres = LocalPostgres(settings)
        self.kafka = LocalKafka(settings)

    def up(self) -> UpReport:
        """Idempotent: start what is down, wait until both answer, create missing topics,
        then grant the principals' Kafka ACLs."""
        report = UpReport()
        if self.postgres.start():
            report.started.append("postgresql")
        self.postgres.ensure_database()
        if self.kafka.start():
            report.started.append("kafka")
        report.created_topics = self.kafka.ensure_topics()
        report.acls = self.kafka.ensure_acls()
        return report

    def down(self) -> list[str]:
        stopped = []
        if self.kafka.stop():
            stopped.append("kafka")
        if self.postgres.stop():
            stopped.append("postgresql")
        return stopped

    def status(self) -> list[Health]:
        return [self.postgres.health(), self.kafka.health()]
