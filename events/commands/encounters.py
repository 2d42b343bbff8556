"""Commands about encounters: start, transfer, update and end a patient's stay or visit.

The n-th encounter of a patient is the stream ``keyed_id("encounter:<patient>:<n>")``: an
id nobody can guess or link without the store's key, and one slot per encounter, so two
starts racing for the same patient race for the same stream and one of them is refused
(409) instead of opening two encounters.

The care team follows the encounter: after each encounter command, the backbone itself
(the system actor) puts the attending, the consulting physicians and the ward's staff on
the patient's care team, and gives those the encounter brought in and no longer needs
(discharge, a move to another ward, a new attending) a ``leaves_at`` one grace period
(``care_team_grace``) later. Each change is a ``care_team.changed`` naming the encounter;
manual members are never removed by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from events.commands.base import CommandContext, CommandResult, Outcome, Pending, command
from events.commands.wards import WardCommands
from events.domain.aggregates import access, encounters
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import ConflictError, NotFound
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
    consulting_ids: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class TransferEncounter:
    """Move the patient of an open encounter to another location."""

    encounter_id: UUID
    ward: str
    room: str | None = None
    bed: str | None = None


@dataclass(frozen=True)
class UpdateEncounter:
    """Change the attending physician, the class or the consulting physicians; None (or
    nothing to add or remove) leaves it as it is."""

    encounter_id: UUID
    attending_id: UUID | None = None
    encounter_class: str | None = None
    consulting_added: tuple[UUID, ...] = ()
    consulting_removed: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class EndEncounter:
    """Discharge: end an open encounter with its disposition."""

    encounter_id: UUID
    disposition: str


def _may_join(member: access.TeamMember | None) -> bool:
    return member is not None and member.active and member.role in access.CARE_ROLES


def _location(ward: str, room: str | None, bed: str | None) -> dict[str, Any]:
    return {"ward": ward, "room": room, "bed": bed}


class EncounterCommands(WardCommands):
    """The write API of encounters; the care team follows them."""

    # How long a member the encounter brought stays after it ends or moves away (handover,
    # late results); the store's settings set it (``BACKBONE_CARE_TEAM_GRACE_HOURS``).
    care_team_grace = timedelta(hours=24)

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
                {user: self.team_member(user) for user in cmd.consulting_ids},
            )
            stream = self.encounter_slot(cmd.patient_id, count + 1)
            conflict = ConflictError("another encounter of the patient was started meanwhile")
            return Outcome(stream, [Pending(stream, 1, cmd.patient_id, payload)], {}, conflict)

        result = self.execute(ctx, outcome)
        self.team_follows(ctx, result.id)
        return result

    @command
    def transfer_encounter(self, ctx: CommandContext, cmd: TransferEncounter) -> CommandResult:
        """Move the patient; the new ward's staff join, the old ward's leave after the grace."""
        location = _location(cmd.ward, cmd.room, cmd.bed)
        result = self.change_record(
            ctx,
            cmd.encounter_id,
            self.encounter,
            lambda encounter, _: encounters.transfer(encounter, location),
        )
        self.team_follows(ctx, cmd.encounter_id)
        return result

    @command
    def update_encounter(self, ctx: CommandContext, cmd: UpdateEncounter) -> CommandResult:
        """Change the attending, the class or the consultants; the care team follows."""

        def decide(encounter: encounters.Encounter, _: datetime) -> enc.EncounterUpdated:
            attending = self.team_member(cmd.attending_id) if cmd.attending_id else None
            return encounters.update(
                encounter,
                attending,
                cmd.attending_id,
                cmd.encounter_class,
                {user: self.team_member(user) for user in cmd.consulting_added},
                frozenset(cmd.consulting_removed),
            )

        result = self.change_record(ctx, cmd.encounter_id, self.encounter, decide)
        self.team_follows(ctx, cmd.encounter_id)
        return result

    @command
    def end_encounter(self, ctx: CommandContext, cmd: EndEncounter) -> CommandResult:
        """End an open encounter; those it brought onto the care team leave after the grace."""
        result = self.change_record(
            ctx,
            cmd.encounter_id,
            self.encounter,
            lambda encounter, _: encounters.end(encounter, cmd.disposition),
        )
        self.team_follows(ctx, cmd.encounter_id)
        return result

    def team_follows(self, ctx: CommandContext, encounter_id: UUID) -> None:
        """Bring the care team in line with the encounter, as the system, in one save: the
        encounter's people join (a leaving one stays), those it brought and no longer needs
        leave one grace period from now. Retried when a concurrent change wins the race."""
        encounter = self.encounter(encounter_id)
        system = CommandContext(
            SYSTEM_ACTOR, f"encounter {encounter_id}", correlation_id=ctx.correlation_id
        )
        for attempt in range(3):
            if not self._team_changes(encounter, self.clock()).pending:
                return
            try:
                self.execute(system, lambda now: self._team_changes(encounter, now))
                return
            except ConflictError:
                if attempt == 2:
                    raise

    def encounter_people(self, encounter: encounters.Encounter) -> frozenset[UUID]:
        """Who the encounter puts on the care team: nobody once it has ended."""
        if not encounter.open:
            return frozenset()
        ward = self.ward_staff(encounter.location.ward)
        return frozenset({encounter.attending_id, *encounter.consulting, *ward})

    def _team_changes(self, encounter: encounters.Encounter, now: datetime) -> Outcome:
        stream = access.care_team_id(encounter.patient_id)
        team = self.care_team(encounter.patient_id)
        wanted = self.encounter_people(encounter)
        joining = sorted(
            (u for u in wanted if team is None or not team.includes(u, now) or team.leaves_at(u)),
            key=str,
        )
        leaving = sorted((team.brought_by(encounter.id) if team else frozenset()) - wanted, key=str)
        version = team.version if team is not None else 0
        pending: list[Pending] = []
        changes = [*((u, "added") for u in joining), *((u, "removed") for u in leaving)]
        for user_id, change in changes:
            member = self.team_member(user_id)
            if change == "added" and not _may_join(member):
                continue  # a ward assignment outlived the account's role or activity
            payload = access.change_care_team(
                team,
                SYSTEM_ACTOR,
                member,
                user_id,
                change,
                f"encounter {encounter.id}",
                now,
                encounter.id,
                now + self.care_team_grace if change == "removed" else None,
            )
            version += 1
            pending.append(Pending(stream, version, encounter.patient_id, payload))
        return Outcome(stream, pending, {}, ConflictError("the care team changed meanwhile"))
