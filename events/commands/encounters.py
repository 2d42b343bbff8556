"""Commands about encounters: start, transfer, update and end a patient's stay or visit.

The n-th encounter of a patient is the stream ``keyed_id("encounter:<patient>:<n>")``: an
id nobody can guess or link without the store's key, and one slot per encounter, so two
starts racing for the same patient race for the same stream and one of them is refused
(409) instead of opening two encounters. Starting an encounter (or changing its attending)
then puts the attending physician on the patient's care team, as the system, in a second
command right after the encounter is saved; ending one removes nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from events.commands.access import AccessCommands, ChangeCareTeam
from events.commands.base import CommandContext, CommandResult, Outcome, Pending, command
from events.domain.aggregates import access, encounters
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import ClinicalRuleViolation, ConflictError, NotFound
from events.domain.payloads import encounters as enc


@dataclass(frozen=True)
class StartEncounter:
    """Admit or check in a patient: class, location, attending physician."""

    patient_id: UUID
    encounter_class: str
    ward: str
    attending_id: UUID
    room: str | None = None
    bed: str | None = None


@dataclass(frozen=True)
class TransferEncounter:
    """Move the patient of an open encounter to another location."""

    encounter_id: UUID
    ward: str
    room: str | None = None
    bed: str | None = None


@dataclass(frozen=True)
class UpdateEncounter:
    """Change the attending physician and/or the class; None leaves it as it is."""

    encounter_id: UUID
    attending_id: UUID | None = None
    encounter_class: str | None = None


@dataclass(frozen=True)
class EndEncounter:
    """Discharge: end an open encounter with its disposition."""

    encounter_id: UUID
    disposition: str


def _location(ward: str, room: str | None, bed: str | None) -> dict[str, Any]:
    return {"ward": ward, "room": room, "bed": bed}


class EncounterCommands(AccessCommands):
    """The write API of encounters."""

    def encounter_slot(self, patient_id: UUID, number: int) -> UUID:
        """The stream of the patient's ``number``-th encounter (from 1)."""
        return self.keyed_id(f"encounter:{patient_id}:{number}".encode())

    def latest_encounter(self, patient_id: UUID) -> tuple[int, encounters.Encounter | None]:
        """How many encounters the patient has had, and the latest (the only one that may
        be open)."""
        count, latest = 0, None
        while found := self.load(self.encounter_slot(patient_id, count + 1), encounters.evolve):
            count, latest = count + 1, found
        return count, latest

    def encounter(self, encounter_id: UUID) -> encounters.Encounter:
        """The encounter's current state, or NotFound."""
        state = self.load(encounter_id, encounters.evolve)
        if state is None:
            raise NotFound("encounter", encounter_id)
        return state

    @command
    def start_encounter(self, ctx: CommandContext, cmd: StartEncounter) -> CommandResult:
        """Start an encounter (none may be open for the patient); the attending joins the
        patient's care team."""

        def outcome(_: datetime) -> Outcome:
            if ctx.guard is not None:
                ctx.guard(cmd.patient_id)
            self.patient(cmd.patient_id)
            count, latest = self.latest_encounter(cmd.patient_id)
            payload = encounters.start(
                latest,
                self.team_member(cmd.attending_id),
                cmd.attending_id,
                cmd.encounter_class,
                _location(cmd.ward, cmd.room, cmd.bed),
            )
            stream = self.encounter_slot(cmd.patient_id, count + 1)
            conflict = ConflictError("another encounter of the patient was started meanwhile")
            return Outcome(stream, [Pending(stream, 1, cmd.patient_id, payload)], {}, conflict)

        result = self.execute(ctx, outcome)
        self._attending_joins(ctx, cmd.patient_id, cmd.attending_id, result.id)
        return result

    @command
    def transfer_encounter(self, ctx: CommandContext, cmd: TransferEncounter) -> CommandResult:
        location = _location(cmd.ward, cmd.room, cmd.bed)
        return self.change_record(
            ctx,
            cmd.encounter_id,
            self.encounter,
            lambda encounter, _: encounters.transfer(encounter, location),
        )

    @command
    def update_encounter(self, ctx: CommandContext, cmd: UpdateEncounter) -> CommandResult:
        """Change the attending and/or the class; a new attending joins the care team."""

        def decide(encounter: encounters.Encounter, _: datetime) -> enc.EncounterUpdated:
            attending = self.team_member(cmd.attending_id) if cmd.attending_id else None
            return encounters.update(encounter, attending, cmd.attending_id, cmd.encounter_class)

        result = self.change_record(ctx, cmd.encounter_id, self.encounter, decide)
        if cmd.attending_id is not None:
            patient_id = self.encounter(cmd.encounter_id).patient_id
            self._attending_joins(ctx, patient_id, cmd.attending_id, cmd.encounter_id)
        return result

    @command
    def end_encounter(self, ctx: CommandContext, cmd: EndEncounter) -> CommandResult:
        """End an open encounter; nobody leaves the care team (a grace period is later work)."""
        return self.change_record(
            ctx,
            cmd.encounter_id,
            self.encounter,
            lambda encounter, _: encounters.end(encounter, cmd.disposition),
        )

    def _attending_joins(
        self, ctx: CommandContext, patient_id: UUID, attending_id: UUID, encounter_id: UUID
    ) -> None:
        """Put the attending on the patient's care team as the system, unless a member."""
        if self._on_team(patient_id, attending_id):
            return
        reason = f"encounter {encounter_id}"
        system = CommandContext(SYSTEM_ACTOR, reason, correlation_id=ctx.correlation_id)
        try:
            self.change_care_team(system, ChangeCareTeam(patient_id, attending_id, "added"))
        except ClinicalRuleViolation:
            if not self._on_team(patient_id, attending_id):  # not a race with another add
                raise

    def _on_team(self, patient_id: UUID, user_id: UUID) -> bool:
        team = self.load(access.care_team_id(patient_id), access.evolve_care_team)
        return team is not None and user_id in team.members
