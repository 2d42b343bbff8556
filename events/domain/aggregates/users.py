"""User accounts as events: created, role changed. Credentials live outside the store."""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

from events.domain.envelope import ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, ConflictError
from events.domain.payloads import access as acc


@dataclass(frozen=True)
class User:
    """A user account: who and which role."""

    id: UUID
    version: int
    username: str
    display_name: str
    role: str


class DuplicateUsername(ConflictError):
    """A user with this username exists."""

    def __init__(self, existing_id: UUID) -> None:
        super().__init__(f"a user with this username already exists ({existing_id})")
        self.existing_id = existing_id


def evolve(state: User | None, event: ClinicalEvent) -> User:
    payload = event.payload
    if isinstance(payload, acc.UserCreated):
        return User(
            event.originator_id,
            event.originator_version,
            payload.username,
            payload.display_name,
            payload.role,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before user.created")
    if isinstance(payload, acc.UserRolesChanged):
        return replace(state, version=event.originator_version, role=payload.role)
    raise ValueError(f"user stream cannot apply {event.event_type}")


def create(user_id: UUID, existing: User | None, request: acc.UserCreated) -> acc.UserCreated:
    if existing is not None:
        raise DuplicateUsername(user_id)
    return request


def change_role(user: User, role: str) -> acc.UserRolesChanged:
    if user.role == role:
        raise ClinicalRuleViolation(f"the user already has the role {role}", field="role")
    return acc.UserRolesChanged.model_validate({"role": role, "previous_role": user.role})
