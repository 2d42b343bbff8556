"""Payloads of patient merges: two records found to be one person, and the merge undone.

A merge is recorded twice in one transaction: on the merged (non-surviving) record's stream,
keyed on Kafka by the merged id, and on the survivor's stream, keyed by the survivor's id,
both copies naming both ids. Each record's consumers so learn of it in that record's own
order, and a merge touching a record races (and conflicts) with any other change to it.
Read models that follow merges apply the merged record's copy (``patient_id`` equal to
``merged_id``) and may ignore the survivor's.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import model_validator

from events.domain.payloads.base import Payload


class _MergePair(Payload):
    survivor_id: UUID
    merged_id: UUID

    @model_validator(mode="after")
    def _two_records(self) -> _MergePair:
        if self.survivor_id == self.merged_id:
            raise ValueError("a record cannot be merged into itself")
        return self


class PatientMerged(_MergePair):
    """The merged record now points to the survivor: reads of either answer the survivor's
    chart with both histories, and the merged record takes no new writes."""

    event_type = "patient.merged"


class PatientUnmerged(_MergePair):
    """A merge was undone: each record reads (and takes writes) as its own again."""

    event_type = "patient.unmerged"
