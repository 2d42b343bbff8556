"""User accounts as events: created, role changed (privileged roles approved by a second
administrator), deactivated, password changed, sessions revoked. Credentials live outside
the store."""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.envelope import Actor, ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, ConflictError, NotPermitted
from events.domain.payloads import access as acc


@dataclass(frozen=True)
class User:
    """A user account: who, which role, and whether it may still log in."""

    id: UUID
    version: int
    username: str
    display_name: str
    role: str
    active: bool = True
    created_by: UUID | None = None
    # Two people for power: a privileged account or role waits for a second administrator.
    approved: bool = True
    pending_role: str | None = None
    requested_by: UUID | None = None

    @property
    def may_log_in(self) -> bool:
        return self.active and self.approved


class DuplicateUsername(ConflictError):
    """A user with this username exists."""

    def __init__(self, existing_id: UUID) -> None:
        super().__init__(f"a user with this username already exists ({existing_id})")
        self.existing_id = existing_id


_BOOKKEEPING = (acc.UserPasswordChanged, acc.UserSessionsRevoked)


def evolve(state: User | None, event: ClinicalEvent) -> User:
    payload = event.payload
    if isinstance(payload, acc.UserCreated):
        pending = payload.approval_required
        return User(
            event.originator_id,
            event.originator_version,
            payload.username,
            payload.display_name,
            payload.role,
            created_by=event.actor.user_id,
            approved=not pending,
            pending_role=payload.role if pending else None,
            requested_by=event.actor.user_id if pending else None,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before user.created")
    if isinstance(payload, acc.UserRolesChanged):
        return replace(state, version=event.originator_version, role=payload.role)
    if isinstance(payload, acc.UserRoleChangeRequested):
        return replace(
            state,
            version=event.originator_version,
            pending_role=payload.role,
            requested_by=event.actor.user_id,
        )
    if isinstance(payload, acc.UserApproved):
        return replace(
            state,
            version=event.originator_version,
            role=payload.role,
            approved=True,
            pending_role=None,
            requested_by=None,
        )
    if isinstance(payload, acc.UserDeactivated):
        return replace(state, version=event.originator_version, active=False)
    if isinstance(payload, _BOOKKEEPING):
        return replace(state, version=event.originator_version)
    raise ValueError(f"user stream cannot apply {event.event_type}")


PRIVILEGED = frozenset({"admin", "compliance"})


def _needs_a_second_person(role: str, actor: Actor) -> bool:
    # The backbone itself (setup, the demo) creates the first administrators.
    return role in PRIVILEGED and actor.role != "system"


def create(
    user_id: UUID, existing: User | None, request: acc.UserCreated, actor: Actor
) -> acc.UserCreated:
    if existing is not None:
        raise DuplicateUsername(user_id)
    if _needs_a_second_person(request.role, actor):
        return request.model_copy(update={"approval_required": True})
    return request


def change_role(
    user: User, role: str, actor: Actor
) -> acc.UserRolesChanged | acc.UserRoleChangeRequested:
    """A new role; becoming admin or compliance is a request a second administrator approves."""
    if not user.active:
        raise ClinicalRuleViolation("the user is deactivated", field="role")
    if user.role == role:
        raise ClinicalRuleViolation(f"the user already has the role {role}", field="role")
    if user.pending_role is not None:
        raise ConflictError(f"a change to {user.pending_role} is waiting for approval")
    change = {"role": role, "previous_role": user.role}
    if _needs_a_second_person(role, actor):
        return acc.UserRoleChangeRequested.model_validate(change)
    return acc.UserRolesChanged.model_validate(change)


def approve(user: User, approver: User | None, actor: Actor) -> acc.UserApproved:
    """A second administrator approves: never the requester, never the account itself, and
    never an account the requester created (a requester cannot approve through a puppet)."""
    if user.pending_role is None or user.requested_by is None:
        raise ClinicalRuleViolation("nothing of this user waits for approval", field="user_id")
    if not user.active:
        raise ClinicalRuleViolation("the user is deactivated", field="user_id")
    requester = user.requested_by
    if actor.user_id in (requester, user.id):
        raise NotPermitted("a second administrator must approve this, not you")
    if approver is not None and approver.created_by == requester:
        raise NotPermitted("an account created by the requester cannot approve their request")
    return acc.UserApproved.model_validate({"role": user.pending_role, "requested_by": requester})


def deactivate(user: User, actor_id: UUID, reason: str | None) -> acc.UserDeactivated:
    """With a reason; nobody deactivates themself (that could leave no administrator)."""
    require_reason(reason, "deactivate a user")
    if not user.active:
        raise ClinicalRuleViolation("the user is already deactivated", field="user_id")
    if user.id == actor_id:
        raise ClinicalRuleViolation("you cannot deactivate your own account", field="user_id")
    return acc.UserDeactivated(username=user.username)


def change_password(user: User, sessions_ended: int) -> acc.UserPasswordChanged:
    if not user.active:
        raise ClinicalRuleViolation("the user is deactivated", field="user_id")
    return acc.UserPasswordChanged(sessions_ended=sessions_ended)


def revoke_sessions(user: User, sessions_ended: int) -> acc.UserSessionsRevoked:
    del user  # any account's sessions can be ended, active or not
    return acc.UserSessionsRevoked(sessions_ended=sessions_ended)
