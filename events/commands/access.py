"""Commands about access: chart reads, break-glass grants and the care team."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, command
from events.domain.aggregates import access
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
        def decide(team: access.CareTeam | None, _: datetime) -> p.CareTeamChanged:
            self.patient(cmd.patient_id)
            return access.change_care_team(team, cmd.user_id, cmd.change)

        stream = access.care_team_id(cmd.patient_id)
        return self.change(
            ctx,
            stream,
            lambda: self.load(stream, access.evolve_care_team),
            decide,
            cmd.patient_id,
        )

    def may_access(self, user_id: UUID, patient_id: UUID) -> tuple[bool, bool]:
        """(allowed, through break-glass) for a user and a patient, from the store."""
        team = self.load(access.care_team_id(patient_id), access.evolve_care_team)
        if team is not None and user_id in team.members:
            return True, False
        grants = self.load(access.break_glass_id(patient_id), access.evolve_break_glass)
        if grants is not None and grants.active_for(user_id, self.clock()):
            return True, True
        return False, False
