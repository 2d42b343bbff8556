"""Who may see a patient: the care team and break-glass grants, one stream each per patient.

Both are aggregates of the store (not read models) so that an access check right after a
change sees it: the API loads them for every clinical read and write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
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
    """The users who treat a patient.

    ``members`` includes those leaving after a grace period (``leaving``: user → when they
    leave); ``joined_with`` remembers which encounter brought a member in, so that the
    encounter's end or move takes away only those it brought."""

    id: UUID
    version: int
    members: frozenset[UUID] = frozenset()
    leaving: tuple[tuple[UUID, datetime], ...] = ()
    joined_with: tuple[tuple[UUID, UUID], ...] = ()

    def includes(self, user_id: UUID, now: datetime) -> bool:
        """Whether the user is on the team at ``now`` (a leaving member until they leave)."""
        if user_id not in self.members:
            return False
        leaves_at = dict(self.leaving).get(user_id)
        return leaves_at is None or now < leaves_at

    def leaves_at(self, user_id: UUID) -> datetime | None:
        return dict(self.leaving).get(user_id)

    def brought_by(self, encounter_id: UUID) -> frozenset[UUID]:
        """The members (not already leaving) that the encounter brought in."""
        leaving = dict(self.leaving)
        return frozenset(
            user
            for user, encounter in self.joined_with
            if encounter == encounter_id and user in self.members and user not in leaving
        )


def _without(pairs: tuple[tuple[UUID, Any], ...], user_id: UUID) -> tuple[tuple[UUID, Any], ...]:
    return tuple(pair for pair in pairs if pair[0] != user_id)


def evolve_care_team(state: CareTeam | None, event: ClinicalEvent) -> CareTeam:
    payload = event.payload
    if not isinstance(payload, p.CareTeamChanged):
        raise ValueError(f"care team stream cannot apply {event.event_type}")
    team = state or CareTeam(event.originator_id, 0)
    user = payload.user_id
    version = event.originator_version
    if payload.change == "added":
        joined = _without(team.joined_with, user)
        if payload.encounter_id is not None:
            joined = (*joined, (user, payload.encounter_id))
        return replace(
            team,
            version=version,
            members=team.members | {user},
            leaving=_without(team.leaving, user),
            joined_with=joined,
        )
    if payload.leaves_at is not None:
        leaving = (*_without(team.leaving, user), (user, payload.leaves_at))
        return replace(team, version=version, leaving=leaving)
    return replace(
        team,
        version=version,
        members=team.members - {user},
        leaving=_without(team.leaving, user),
        joined_with=_without(team.joined_with, user),
    )


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
    now: datetime,
    encounter_id: UUID | None = None,
    leaves_at: datetime | None = None,
) -> p.CareTeamChanged:
    """Care team as governed data: an administrator or a member of the team changes it;
    nobody adds themself (that is what break-glass, with its reason and alert, is for);
    only active clinical users join, never by the administrator who created the account; a
    removal needs a reason. Adding a member who is leaving after a grace period keeps them."""
    current = team or CareTeam(UUID(int=0), 0)
    if change == "added" and user_id == actor.user_id:
        raise SelfGrantRefused(
            "you cannot add yourself to a care team; break the glass with a reason if "
            "this is an emergency, or ask a member or an administrator"
        )
    if actor.role not in TEAM_ADMINISTRATORS and not current.includes(actor.user_id, now):
        raise NotPermitted("only an administrator or a member of this care team may change it")
    if change == "added":
        check_clinical_user(actor, member, user_id, "a care team")
        if user_id in current.members and current.leaves_at(user_id) is None:
            raise ClinicalRuleViolation("the user is already on the care team", field="user_id")
    else:
        require_reason(reason, "remove someone from a care team")
        if not current.includes(user_id, now):
            raise ClinicalRuleViolation("the user is not on the care team", field="user_id")
    role = member.role if member is not None else None
    return p.CareTeamChanged.model_validate(
        {
            "user_id": user_id,
            "change": change,
            "role": role,
            "encounter_id": encounter_id,
            "leaves_at": leaves_at if change == "removed" else None,
        }
    )


def check_clinical_user(
    actor: Actor, member: TeamMember | None, user_id: UUID, joining: str
) -> None:
    """Only an existing, active nurse, physician or pharmacist joins a care team or a ward,
    and never through the administrator who created the account (separation of duties: an
    administrator cannot make an account and then open charts through it)."""
    if member is None:
        raise ClinicalRuleViolation(f"there is no user {user_id}", field="user_id")
    if member.role not in CARE_ROLES:
        raise ClinicalRuleViolation(
            f"a {member.role} cannot be on {joining} (nurses, physicians and pharmacists can)",
            field="user_id",
        )
    if not member.active:
        raise ClinicalRuleViolation("the user is deactivated", field="user_id")
    if actor.role == "admin" and member.created_by == actor.user_id:
        raise NotPermitted(
            f"an account you created joins {joining} through another administrator or a "
            "member of the team"
        )


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
