"""Wards and their staff: who works on a ward, kept as data (one stream per ward).

When a patient's encounter starts on a ward or moves to it, the ward's staff join the
patient's care team; the decisions here are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID, uuid5

from events.domain.aggregates.access import STREAMS, TeamMember, check_clinical_user
from events.domain.envelope import Actor, ClinicalEvent
from events.domain.errors import ClinicalRuleViolation
from events.domain.payloads import access as acc
from events.domain.text import clean_text


def ward_key(ward: str) -> str:
    """Wards are named by people and HL7 systems alike: ``ICU`` and ``icu `` are one ward."""
    return clean_text(ward).strip().casefold()


def ward_staff_id(ward: str) -> UUID:
    return uuid5(STREAMS, f"ward:{ward_key(ward)}")


@dataclass(frozen=True)
class WardStaff:
    """The users assigned to one ward."""

    id: UUID
    version: int
    ward: str
    staff: frozenset[UUID] = frozenset()


def evolve(state: WardStaff | None, event: ClinicalEvent) -> WardStaff:
    payload = event.payload
    if not isinstance(payload, acc.WardStaffChanged):
        raise ValueError(f"a ward cannot apply {event.event_type}")
    ward = state or WardStaff(event.originator_id, 0, payload.ward)
    staff = (
        ward.staff | {payload.user_id}
        if payload.change == "assigned"
        else ward.staff - {payload.user_id}
    )
    return replace(ward, version=event.originator_version, staff=staff)


def change_staff(
    ward: WardStaff | None,
    actor: Actor,
    member: TeamMember | None,
    name: str,
    user_id: UUID,
    change: str,
) -> acc.WardStaffChanged:
    """Assign an active clinical user to a ward (the same rules as joining a care team:
    the ward's staff join care teams automatically), or unassign an assigned one."""
    staff = ward.staff if ward is not None else frozenset()
    if change == "assigned":
        check_clinical_user(actor, member, user_id, "a ward")
        if user_id in staff:
            raise ClinicalRuleViolation("the user is already assigned to the ward", field="user_id")
    elif user_id not in staff:
        raise ClinicalRuleViolation("the user is not assigned to the ward", field="user_id")
    return acc.WardStaffChanged.model_validate(
        {
            "ward": ward.ward if ward is not None else name,
            "user_id": user_id,
            "change": change,
            "role": member.role if member is not None else None,
        }
    )
