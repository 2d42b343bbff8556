"""Commands about merging patient records: merge (two records are one person) and unmerge.

Both events go on both records' streams in one transaction, survivor first and merged
record last: the two appends are checked against both streams' versions, so a merge races
(409) with any change to either record — two merges that would chain or cross cannot both
be saved — and the command's position is the merged record's copy, the one the chart
projection applies, so ``min_position`` waits on the partition that carries it.

After a merge the merged record takes no new writes (``PatientMergedError``, 409, names the
survivor); what it already holds (orders, prescriptions, encounters) stays under its id
and is read with the survivor's chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.commands.base import (
    CommandContext,
    CommandCore,
    CommandResult,
    Outcome,
    Pending,
    command,
)
from events.domain.aggregates import merges, patients
from events.domain.errors import ConflictError, PatientErasedError
from events.domain.payloads.base import Payload

# Merges nest only as deep as people keep merging survivors: far less than this.
MAX_DEPTH = 64


@dataclass(frozen=True)
class MergePatients:
    """The record ``merged_id`` is the same person as ``survivor_id``, which survives."""

    survivor_id: UUID
    merged_id: UUID


@dataclass(frozen=True)
class UnmergePatients:
    """Undo the merge of ``merged_id`` into ``survivor_id`` (the context carries the reason)."""

    survivor_id: UUID
    merged_id: UUID


class MergeCommands(CommandCore):
    """The write API of patient merges, and who a record's reads go to."""

    def _patient_record(self, patient_id: UUID) -> patients.Patient | None:
        return self.load(patient_id, patients.evolve)

    def patient(self, patient_id: UUID) -> patients.Patient:
        """The patient's current state for a decision, or NotFound / PatientErasedError /
        PatientMergedError; a survivor's includes the allergies of the records merged into
        it, so every command's checks (allergy screening, duplicates) see the whole person."""
        state = patients.require_patient(self._patient_record(patient_id), patient_id)
        if not state.merged_ids:
            return state
        _, merged_ids = self.merge_group(patient_id)
        held = [m for m in map(self._readable, merged_ids) if m is not None and not m.erased]
        return merges.with_merged(state, held)

    def _both(
        self, ctx: CommandContext, survivor_id: UUID, merged_id: UUID
    ) -> tuple[patients.Patient | None, patients.Patient | None]:
        if ctx.guard is not None:
            ctx.guard(survivor_id)
            ctx.guard(merged_id)
        return self._patient_record(survivor_id), self._patient_record(merged_id)

    @staticmethod
    def _on_both(
        survivor: patients.Patient | None,
        merged: patients.Patient | None,
        payload: Payload,
        result_id: UUID,
    ) -> Outcome:
        if survivor is None or merged is None:  # pragma: no cover - the decision refused it
            raise ValueError("a merge needs both records")
        pending = [
            Pending(survivor.id, survivor.version + 1, survivor.id, payload),
            Pending(merged.id, merged.version + 1, merged.id, payload),
        ]
        conflict = ConflictError("one of the two records changed meanwhile; send it again")
        return Outcome(result_id, pending, {}, conflict)

    @command
    def merge_patients(self, ctx: CommandContext, cmd: MergePatients) -> CommandResult:
        """Merge ``merged_id`` into ``survivor_id``; answers the survivor's id."""

        def outcome(_: datetime) -> Outcome:
            survivor, merged = self._both(ctx, cmd.survivor_id, cmd.merged_id)
            payload = merges.merge(survivor, cmd.survivor_id, merged, cmd.merged_id)
            return self._on_both(survivor, merged, payload, cmd.survivor_id)

        return self.execute(ctx, outcome)

    @command
    def unmerge_patients(self, ctx: CommandContext, cmd: UnmergePatients) -> CommandResult:
        """Undo a merge in force, with a reason; answers the merged record's id."""

        def outcome(_: datetime) -> Outcome:
            survivor, merged = self._both(ctx, cmd.survivor_id, cmd.merged_id)
            payload = merges.unmerge(survivor, cmd.survivor_id, merged, cmd.merged_id, ctx.reason)
            return self._on_both(survivor, merged, payload, cmd.merged_id)

        return self.execute(ctx, outcome)

    def survivor_of(self, patient_id: UUID) -> UUID:
        """The record reads of ``patient_id`` go to: the end of its chain of merges in
        force (itself when it is not merged). A survivor that was erased ends the chain
        before it: what was merged into it reads as its own again."""
        current, seen = patient_id, {patient_id}
        for _ in range(MAX_DEPTH):
            state = self._readable(current)
            if state is None or state.merged_into is None or state.merged_into in seen:
                return current
            following = self._readable(state.merged_into)
            if following is None or following.erased:
                return current
            current = state.merged_into
            seen.add(current)
        return current

    def merge_group(self, patient_id: UUID) -> tuple[UUID, tuple[UUID, ...]]:
        """(survivor, every record merged into it directly or through others) for a record:
        the ids whose data a read of ``patient_id`` answers, the survivor first."""
        survivor = self.survivor_of(patient_id)
        group, frontier = [survivor], [survivor]
        while frontier and len(group) < MAX_DEPTH:
            state = self._readable(frontier.pop())
            for merged_id in state.merged_ids if state is not None else ():
                if merged_id not in group:
                    group.append(merged_id)
                    frontier.append(merged_id)
        return survivor, tuple(group[1:])

    def _readable(self, patient_id: UUID) -> patients.Patient | None:
        try:
            return self._patient_record(patient_id)
        except PatientErasedError:
            return None
