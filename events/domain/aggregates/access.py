"""Who may see a patient: the care team and break-glass grants, one stream each per patient.

Both are aggregates of the store (not read models) so that an access check right after a
change sees it: the API loads them for every clinical read and write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from events.domain.aggregates.common import require_reason
from events.domain.envelope import Actor, ClinicalEvent
from events.domain.errors import ClinicalRuleViolation, NotPermitted, SelfGrantRefused
from events.domain.payloads import access as acc
from events.domain.payloads import patients as p

STREAMS = UUID("6f1d2f7e-5b7a-4d3c-9a51-0c1b8e2a7d10")


def erasure_id(patient_id: UUID) -> UUID:
    return uuid5(STREAMS, f"erasure:{patient_id}")


@dataclass(frozen=True)
class ErasureRequest:
    """A pending erasure request: who asked, on what legal basis."""

    id: UUID
    version: int
    request_id: UUID
    requested_by: UUID
    legal_basis: str


def evolve_erasure(_: ErasureRequest | None, event: ClinicalEvent) -> ErasureRequest:
    payload = event.payload
    if not isinstance(payload, p.ErasureRequested):
        raise ValueError(f"erasure stream cannot apply {event.event_type}")
    return ErasureRequest(
        event.originator_id,
        event.originator_version,
        payload.request_id,
        event.actor.user_id,
        payload.legal_basis,
    )


def care_team_id(patient_id: UUID) -> UUID:
    return uuid5(STREAMS, f"care-team:{patient_id}")


def break_glass_id(patient_id: UUID) -> UUID:
    return uuid5(STREAMS, f"break-glass:{patient_id}")


@dataclass(frozen=True)
class CareTeam:
    """The users who treat a patient."""

    id: UUID
    version: int
    members: frozenset[UUID] = frozenset()


def evolve_care_team(state: CareTeam | None, event: ClinicalEvent) -> CareTeam:
    payload = event.payload
    if not isinstance(payload, p.CareTeamChanged):
        raise ValueError(f"care team stream cannot apply {event.event_type}")
    team = state or CareTeam(event.originator_id, 0)
    members = (
        team.members | {payload.user_id}
        if payload.change == "added"
        else team.members - {payload.user_id}
    )
    return replace(team, version=event.originator_version, members=members)


CARE_ROLES = frozenset({"nurse", "physician", "pharmacist"})
# Who may change any team: administrators, and the backbone itself (imports, encounters).
TEAM_ADMINISTRATORS = frozenset({"admin", "system"})


@dataclass(frozen=True)
class TeamMember:
    """The user a care-team change names, as the store knows them (None: no such user)."""

    user_id: UUID
    role: str
    active: bool
    created_by: UUID | None = None


def change_care_team(
    team: CareTeam | None,
    actor: Actor,
    member: TeamMember | None,
    user_id: UUID,
    change: str,
    reason: str | None,
) -> p.CareTeamChanged:
    """Care team as governed data: an administrator or a member of the team changes it;
    nobody adds themself (that is what break-glass, with its reason and alert, is for);
    only active clinical users join, never by the administrator who created the account; a
    removal needs a reason."""
    members = team.members if team else frozenset()
    if change == "added" and user_id == actor.user_id:
        raise SelfGrantRefused(
            "you cannot add yourself to a care team; break the glass with a reason if "
            "this is an emergency, or ask a member or an administrator"
        )
    if actor.role not in TEAM_ADMINISTRATORS and actor.user_id not in members:
        raise NotPermitted("only an administrator or a member of this care team may change it")
    if change == "added":
        if member is None:
            raise ClinicalRuleViolation(f"there is no user {user_id}", field="user_id")
        if member.role not in CARE_ROLES:
            raise ClinicalRuleViolation(
                f"a {member.role} cannot be on a care team (nurses, physicians and "
                "pharmacists can)",
                field="user_id",
            )
        if not member.active:
            raise ClinicalRuleViolation("the user is deactivated", field="user_id")
        if actor.role == "admin" and member.created_by == actor.user_id:
            # Separation of duties: an administrator cannot make an account and then open
            # charts through it; another administrator or a team member adds it.
            raise NotPermitted(
                "an account you created joins a care team through another administrator or "
                "a member of the team"
            )
        if user_id in members:
            raise ClinicalRuleViolation("the user is already on the care team", field="user_id")
    else:
        require_reason(reason, "remove someone from a care team")
        if user_id not in members:
            raise ClinicalRuleViolation("the user is not on the care team", field="user_id")
    role = member.role if member is not None else None
    return p.CareTeamChanged.model_validate({"user_id": user_id, "change": change, "role": role})


@dataclass(frozen=True)
class BreakGlass:
    """Emergency access grants to one patient: user → until when."""

    id: UUID
    version: int
    grants: tuple[tuple[UUID, datetime], ...] = ()

    def active_for(self, user_id: UUID, now: datetime) -> bool:
        return any(user == user_id and until > now for user, until in self.grants)


def grant_break_glass(
    reason: str | None, now: datetime, duration: timedelta
) -> acc.BreakGlassGranted:
    """Emergency access until ``now + duration``: only with a reason."""
    require_reason(reason, "break the glass")
    return acc.BreakGlassGranted(expires_at=now + duration)


def evolve_break_glass(state: BreakGlass | None, event: ClinicalEvent) -> BreakGlass:
    payload = event.payload
    if not isinstance(payload, acc.BreakGlassGranted):
        raise ValueError(f"break-glass stream cannot apply {event.event_type}")
    grants = state or BreakGlass(event.originator_id, 0)
    return replace(
        grants,
        version=event.originator_version,
        grants=(*grants.grants, (event.actor.user_id, payload.expires_at)),
    )
