"""What orders, prescriptions and observations read about a patient besides their own stream.

The patient's open encounter (an order, a prescription, a result or a measurement belongs to
it), their latest body weight and height (per-kg dose checks), and whether a user named as
the ordering physician or prescriber is an active physician. ``latest_encounter`` and
``team_member`` are the encounter and access areas' own reads: ``ClinicalStore`` mixes those
areas in, and this mixin only declares them.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from events.commands.base import CommandContext, CommandCore
from events.domain.aggregates import access, encounters, observations
from events.domain.aggregates.orders import require_physician


class ClinicalContext(CommandCore):
    """Reads shared by the order, medication and observation commands."""

    # Provided by ``EncounterCommands`` and ``AccessCommands`` in ``ClinicalStore``.
    latest_encounter: Callable[[UUID], tuple[int, encounters.Encounter | None]]
    team_member: Callable[[UUID], access.TeamMember | None]

    def open_encounter_id(self, patient_id: UUID) -> UUID | None:
        """The patient's open encounter, or None when none is open."""
        _, latest = self.latest_encounter(patient_id)
        return latest.id if latest is not None and latest.open else None

    def body_measurements_id(self, patient_id: UUID) -> UUID:
        """The stream of the patient's body weights and heights."""
        return self.keyed_id(f"body-measurements:{patient_id}".encode())

    def body_measurements(self, patient_id: UUID) -> observations.BodyMeasurements | None:
        """The patient's latest weight and height, or None when neither was recorded."""
        return self.load(self.body_measurements_id(patient_id), observations.evolve)

    def latest_weight_kg(self, patient_id: UUID) -> float | None:
        """The patient's latest recorded body weight in kg, or None."""
        measured = self.body_measurements(patient_id)
        return measured.weight_kg if measured is not None else None

    def physician_for(self, ctx: CommandContext, user_id: UUID | None, field: str) -> UUID:
        """The physician a command names (checked: an active physician), or the actor."""
        if user_id is None:
            return ctx.actor.user_id
        require_physician(self.team_member(user_id), user_id, field)
        return user_id
