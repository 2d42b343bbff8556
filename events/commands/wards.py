"""Commands about wards: who works on a ward (kept as data, changed by administrators).

A ward's staff join the care team of each patient whose encounter starts on the ward or
moves to it (``events.commands.encounters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from events.commands.access import AccessCommands
from events.commands.base import CommandContext, CommandResult, command
from events.domain.aggregates import wards
from events.domain.payloads import access as acc


@dataclass(frozen=True)
class ChangeWardStaff:
    """Assign a clinical user to a ward, or unassign them."""

    ward: str
    user_id: UUID
    change: Literal["assigned", "unassigned"]


class WardCommands(AccessCommands):
    """The write API of wards, and the read of a ward's staff."""

    def ward_staff(self, ward: str) -> frozenset[UUID]:
        """The users assigned to the ward now (none for a ward nobody was assigned to)."""
        state = self.load(wards.ward_staff_id(ward), wards.evolve)
        return state.staff if state is not None else frozenset()

    @command
    def change_ward_staff(self, ctx: CommandContext, cmd: ChangeWardStaff) -> CommandResult:
        """Assign or unassign; the people already on care teams through the ward stay
        until their patient's encounter ends or moves away."""
        stream = wards.ward_staff_id(cmd.ward)

        def decide(state: wards.WardStaff | None, _: datetime) -> acc.WardStaffChanged:
            member = self.team_member(cmd.user_id)
            return wards.change_staff(state, ctx.actor, member, cmd.ward, cmd.user_id, cmd.change)

        return self.change(ctx, stream, lambda: self.load(stream, wards.evolve), decide, None)
