"""Merging two patient records found to be one person, and undoing it: pure decisions.

They are given both records' states as the store knows them and return the payload both
streams record, or raise: ``NotFound`` (no such record), ``PatientErasedError`` (410),
``ClinicalRuleViolation`` (422) naming the record that blocks it. Chains are allowed one
way only: a survivor may itself be merged later (what was merged into it follows it), but
nothing is merged into a record that is merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from uuid import UUID

from events.domain.aggregates.common import require_reason
from events.domain.aggregates.patients import Patient
from events.domain.errors import ClinicalRuleViolation, NotFound, PatientErasedError
from events.domain.payloads import merges as mp


def _present(state: Patient | None, patient_id: UUID) -> Patient:
    if state is None:
        raise NotFound("patient", patient_id)
    if state.erased:
        raise PatientErasedError(patient_id)
    return state


def _two_records(survivor_id: UUID, merged_id: UUID) -> None:
    if survivor_id == merged_id:
        raise ClinicalRuleViolation("a record cannot be merged with itself", field="merged_id")


def merge(
    survivor: Patient | None, survivor_id: UUID, merged: Patient | None, merged_id: UUID
) -> mp.PatientMerged:
    """Merge ``merged`` into ``survivor``: two live records, neither merged already."""
    _two_records(survivor_id, merged_id)
    kept = _present(survivor, survivor_id)
    gone = _present(merged, merged_id)
    if gone.merged_into == survivor_id:
        raise ClinicalRuleViolation(
            f"patient {merged_id} is already merged into {survivor_id}", field="merged_id"
        )
    if gone.merged_into is not None:
        raise ClinicalRuleViolation(
            f"patient {merged_id} is already merged into {gone.merged_into}: unmerge it first",
            field="merged_id",
        )
    if kept.merged_into is not None:
        raise ClinicalRuleViolation(
            f"the survivor {survivor_id} is itself merged into {kept.merged_into}: merge into "
            f"{kept.merged_into} instead",
            field="patient_id",
        )
    return mp.PatientMerged(survivor_id=survivor_id, merged_id=merged_id)


def unmerge(
    survivor: Patient | None,
    survivor_id: UUID,
    merged: Patient | None,
    merged_id: UUID,
    reason: str | None,
) -> mp.PatientUnmerged:
    """Undo the merge of ``merged`` into ``survivor``, with a reason; only one in force."""
    require_reason(reason, "unmerge patients")
    _two_records(survivor_id, merged_id)
    _present(survivor, survivor_id)
    gone = _present(merged, merged_id)
    if gone.merged_into is None:
        raise ClinicalRuleViolation(
            f"patient {merged_id} is not merged into any record", field="merged_id"
        )
    if gone.merged_into != survivor_id:
        raise ClinicalRuleViolation(
            f"patient {merged_id} is merged into {gone.merged_into}, not {survivor_id}",
            field="merged_id",
        )
    return mp.PatientUnmerged(survivor_id=survivor_id, merged_id=merged_id)


def with_merged(survivor: Patient, merged: Iterable[Patient]) -> Patient:
    """The survivor as its decisions see it: its own state plus the allergies of every
    record merged into it (marked ``held_by``), so that they screen its prescriptions and
    count as recorded. Its version stays its own stream's."""
    held = tuple(replace(a, held_by=m.id) for m in merged for a in m.allergies)
    if not held:
        return survivor
    return replace(survivor, allergies=(*survivor.allergies, *held))
