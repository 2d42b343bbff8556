"""Commands about access: chart reads, break-glass grants and the care team."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, command
from events.domain.aggregates import access, users
from events.domain.envelope import ANONYMOUS_ACTOR, Actor
from events.domain.payloads import access as acc
from events.domain.payloads import patients as p


@dataclass(frozen=True)
class RecordChartView:
    """Somebody read a section of a patient's chart, for a purpose."""

    patient_id: UUID
    section: str
    purpose: str
    break_glass: bool


@dataclass(frozen=True)
class GrantBreakGlass:
    """Emergency access for the actor to one patient (the context carries the reason)."""

    patient_id: UUID
    duration: timedelta


@dataclass(frozen=True)
class ChangeCareTeam:
    """A user joins or leaves a patient's care team."""

    patient_id: UUID
    user_id: UUID
    change: Literal["added", "removed"]
    encounter_id: UUID | None = None
    leaves_at: datetime | None = None


@dataclass(frozen=True)
class RecordDenial:
    """A request was refused (401 or 403): who (when known), what, from where."""

    method: str
    route: str
    status: int
    kind: str
    detail: str
    patient_id: UUID | None
    client: str | None


@dataclass(frozen=True)
class RecordAuditRead:
    """Someone read the audit trail: which part, filtered how, how many rows."""

    what: str
    patient_id: UUID | None
    subject_user_id: UUID | None
    rows: int


class AccessCommands(CommandCore):
    """The write API of access: reads recorded, break-glass, care team; and the check."""

    clock: Callable[[], datetime]

    @command
    def record_chart_view(self, ctx: CommandContext, cmd: RecordChartView) -> CommandResult:
        payload = acc.ChartViewed.model_validate(
            {"section": cmd.section, "purpose": cmd.purpose, "break_glass": cmd.break_glass}
        )
        return self.start(ctx, self.new_id(), cmd.patient_id, lambda _: payload)

    @command
    def grant_break_glass(self, ctx: CommandContext, cmd: GrantBreakGlass) -> CommandResult:
        """Emergency access for the actor to one patient, until ``now + duration``."""

        def decide(_: access.BreakGlass | None, now: datetime) -> acc.BreakGlassGranted:
            granted = access.grant_break_glass(ctx.reason, now, cmd.duration)
            self.patient(cmd.patient_id)
            return granted

        stream = access.break_glass_id(cmd.patient_id)
        return self.change(
            ctx,
            stream,
            lambda: self.load(stream, access.evolve_break_glass),
            decide,
            cmd.patient_id,
        )

    @command
    def change_care_team(self, ctx: CommandContext, cmd: ChangeCareTeam) -> CommandResult:
        """An administrator or a team member adds an active clinical user, or removes a
        member with a reason (the context's); nobody adds themself."""

        def decide(team: access.CareTeam | None, now: datetime) -> p.CareTeamChanged:
            self.patient(cmd.patient_id)
            return access.change_care_team(
                team,
                ctx.actor,
                self.team_member(cmd.user_id),
                cmd.user_id,
                cmd.change,
                ctx.reason,
                now,
                cmd.encounter_id,
                cmd.leaves_at,
            )

        stream = access.care_team_id(cmd.patient_id)
        return self.change(
            ctx,
            stream,
            lambda: self.load(stream, access.evolve_care_team),
            decide,
            cmd.patient_id,
        )

    def record_denial(self, actor: Actor | None, cmd: RecordDenial) -> CommandResult:
        """A refused request, as an event of no patient's stream (the id is in the payload:
        a denial must not create a patient's key, nor vanish with an erasure)."""
        payload = acc.AccessDenied.model_validate(
            {
                "method": cmd.method,
                "route": cmd.route,
                "status": cmd.status,
                "kind": cmd.kind,
                "detail": cmd.detail[:200],
                "patient_id": cmd.patient_id,
                "client": cmd.client,
            }
        )
        ctx = CommandContext(actor=actor or ANONYMOUS_ACTOR)
        return self.start(ctx, self.new_id(), None, lambda _: payload)

    def record_audit_read(self, ctx: CommandContext, cmd: RecordAuditRead) -> CommandResult:
        payload = acc.AuditRead.model_validate(
            {
                "what": cmd.what,
                "patient_id": cmd.patient_id,
                "subject_user_id": cmd.subject_user_id,
                "rows": cmd.rows,
            }
        )
        return self.start(ctx, self.new_id(), None, lambda _: payload)

    def team_member(self, user_id: UUID) -> access.TeamMember | None:
        """The user a care-team change names, or None when there is no such user."""
        user = self.load(user_id, users.evolve)
        if user is None:
            return None
        return access.TeamMember(user.id, user.role, user.may_log_in, user.created_by)

    def may_access(self, user_id: UUID, patient_id: UUID) -> tuple[bool, bool]:
        """(allowed, through break-glass) for a user and a patient, from the store."""
        if self.on_care_team(patient_id, user_id):
            return True, False
        grants = self.load(access.break_glass_id(patient_id), access.evolve_break_glass)
        if grants is not None and grants.active_for(user_id, self.clock()):
            return True, True
        return False, False

    def care_team(self, patient_id: UUID) -> access.CareTeam | None:
        """The patient's care team as the store knows it now."""
        return self.load(access.care_team_id(patient_id), access.evolve_care_team)

    def on_care_team(self, patient_id: UUID, user_id: UUID) -> bool:
        """Whether the user is on the patient's care team now (until a grace period ends)."""
        team = self.care_team(patient_id)
        return team is not None and team.includes(user_id, self.clock())
