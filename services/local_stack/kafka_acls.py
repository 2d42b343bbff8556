"""The Kafka ACLs of ``services/principals.py``, kept in step by ``backbone infra up``.

KRaft's ``StandardAuthorizer`` stores ACLs in the cluster metadata; kafka-python's admin
client (``describe_acls`` / ``create_acls`` / ``delete_acls``) manages them as ``operator``,
a super user. Granting is idempotent: what the table wants and the cluster lacks is created;
what the cluster holds for one of the table's principals and the table no longer wants is
deleted (so narrowing a grant in the table narrows it in the cluster). ACLs of principals the
table does not know (an operator's own departments) are left alone.

Topic ACLs are literal, on one deployment's topic names (``BACKBONE_TOPIC_PREFIX`` before
the table's contract names): granting for one prefix neither widens nor removes another
deployment's, and ``revoke`` takes one deployment's topic ACLs away (a test session's, a
bench run's). Consumer group ACLs are by group prefix and shared by every deployment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from events.domain.topics import TopicNames
from services.local_stack.errors import InfraError
from services.local_stack.processes import wait_until
from services.principals import PRINCIPALS, Principal

ANY_HOST = "*"
TOPIC_READ: tuple[ACLOperation, ...] = (ACLOperation.READ, ACLOperation.DESCRIBE)
TOPIC_WRITE: tuple[ACLOperation, ...] = (ACLOperation.WRITE, ACLOperation.DESCRIBE)


@dataclass(frozen=True)
class AclChanges:
    """What one grant did."""

    created: int
    deleted: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.deleted)


def _allow(
    principal: Principal,
    operation: ACLOperation,
    resource: ResourceType,
    name: str,
    pattern: ACLResourcePatternType = ACLResourcePatternType.LITERAL,
) -> ACL:
    return ACL(
        principal=f"User:{principal.name}",
        host=ANY_HOST,
        operation=operation,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(resource, name, pattern),
    )


def wanted_acls(
    principals: Iterable[Principal] = PRINCIPALS, topics: TopicNames | None = None
) -> set[ACL]:
    """Every ACL the table asks for on one deployment's topics (super users need none)."""
    names = topics or TopicNames()
    wanted: set[ACL] = set()
    for p in principals:
        if p.operator:
            continue
        grants: list[tuple[str, tuple[ACLOperation, ...]]] = [(t, TOPIC_WRITE) for t in p.produces]
        grants += [(t, TOPIC_READ) for t in p.reads]
        grants += [(t, (ACLOperation.DESCRIBE,)) for t in p.describes]
        for topic, operations in grants:
            wanted |= {_allow(p, op, ResourceType.TOPIC, names.of(topic)) for op in operations}
        group_ops = TOPIC_READ if p.may_join_groups() else (ACLOperation.DESCRIBE,)
        for prefix in p.groups:
            wanted |= {
                _allow(p, op, ResourceType.GROUP, prefix, ACLResourcePatternType.PREFIXED)
                for op in group_ops
            }
    return wanted


def _everything() -> ACLFilter:
    return ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )


def current_acls(admin: KafkaAdminClient) -> set[ACL]:
    """Every ACL the cluster holds."""
    found, _ = admin.describe_acls(_everything())
    return set(found)


def _of_deployment(acl: ACL, principals: set[str], topics: TopicNames) -> bool:
    """An ACL of one of the table's principals on this deployment's topics or on groups."""
    pattern = acl.resource_pattern
    if acl.principal not in principals:
        return False
    if pattern.resource_type == ResourceType.GROUP:
        return True
    contract = {t.name for t in topics.all()}
    return pattern.resource_type == ResourceType.TOPIC and pattern.resource_name in contract


def grant(
    admin: KafkaAdminClient,
    principals: Iterable[Principal] = PRINCIPALS,
    timeout_s: float = 15.0,
    topics: TopicNames | None = None,
) -> AclChanges:
    """Make the cluster's ACLs for the table's principals on this deployment's topics (and
    on their groups) what the table says."""
    table, names = tuple(principals), topics or TopicNames()
    wanted = wanted_acls(table, names)
    current = current_acls(admin)
    ours = {f"User:{p.name}" for p in table}
    missing = sorted(wanted - current, key=repr)
    stale = sorted((a for a in current - wanted if _of_deployment(a, ours, names)), key=repr)
    if missing:
        result = admin.create_acls(missing)
        if result["failed"]:
            raise InfraError(f"Kafka refused to create ACLs: {result['failed'][0]!r}")
    if stale:
        for _, _, error in admin.delete_acls(stale):
            if error.errno != 0:
                raise InfraError(f"Kafka refused to delete ACLs: {error!r}")
    if (missing or stale) and not _settled(admin, wanted, set(stale), timeout_s):
        raise InfraError(f"Kafka did not apply the ACLs within {timeout_s:.0f}s")
    return AclChanges(created=len(missing), deleted=len(stale))


def revoke(
    admin: KafkaAdminClient,
    topics: TopicNames,
    principals: Iterable[Principal] = PRINCIPALS,
    timeout_s: float = 15.0,
) -> int:
    """Delete the table's principals' ACLs on this deployment's topics (group ACLs, shared
    by every deployment, stay); how many went. Never for the unprefixed deployment."""
    if not topics.prefix:
        raise ValueError("revoke takes a prefixed deployment's ACLs, never the default's")
    ours = {f"User:{p.name}" for p in principals}
    gone = [
        a
        for a in current_acls(admin)
        if a.resource_pattern.resource_type == ResourceType.TOPIC
        and _of_deployment(a, ours, topics)
    ]
    if not gone:
        return 0
    for _, _, error in admin.delete_acls(gone):
        if error.errno != 0:
            raise InfraError(f"Kafka refused to delete ACLs: {error!r}")
    if not _settled(admin, set(), set(gone), timeout_s):
        raise InfraError(f"Kafka did not remove the ACLs within {timeout_s:.0f}s")
    return len(gone)


def _settled(admin: KafkaAdminClient, wanted: set[ACL], gone: set[ACL], timeout_s: float) -> bool:
    """Wait until the broker's authorizer shows the change: the controller commits ACLs to
    the metadata log and the broker applies them a moment later, and the processes started
    right after ``infra up`` must find their grants."""

    def applied() -> bool:
        current = current_acls(admin)
        return wanted <= current and not gone & current

    return wait_until(applied, timeout_s, 0.1)
