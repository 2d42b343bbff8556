"""``/v1/admin/wards/{ward}/staff``: who works on a ward, kept as data by administrators.

A ward's staff join the care team of each patient whose encounter starts on the ward or
moves to it, and leave after the grace period when the encounter ends or moves away.
Assigning follows the care team's rules (active clinical users; never an account the
administrator created themself), because it grants access to charts.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, status
from pydantic import AfterValidator, BaseModel, ConfigDict

from events.commands.wards import ChangeWardStaff
from events.domain.text import clean_text
from services.api.deps import ContainerDep, IdempotencyKey, require, write_context
from services.api.schemas.common import WriteBase, Written
from services.auth.service import Principal

router = APIRouter(prefix="/v1/admin/wards", tags=["wards"])

Admin = Annotated[Principal, Depends(require("admin"))]
# Ward names are text like any other: control and bidirectional characters are a 422.
WardName = Annotated[str, AfterValidator(clean_text), Path(min_length=1, max_length=200)]


class WardStaffChange(WriteBase):
    """Assign a nurse, physician or pharmacist to the ward, or unassign them."""

    user_id: UUID
    change: Literal["assigned", "unassigned"] = "assigned"

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11"},
                {"user_id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11", "change": "unassigned"},
            ]
        },
    )


class WardStaffPublic(BaseModel):
    """The users assigned to a ward."""

    ward: str
    staff: list[UUID]


@router.post("/{ward}/staff", status_code=status.HTTP_201_CREATED, response_model=Written)
def change_ward_staff(
    ward: WardName,
    body: WardStaffChange,
    container: ContainerDep,
    user: Admin,
    key: IdempotencyKey = None,
) -> Written:
    """Assign a user to the ward (they join the care teams of its new and moved-in
    patients), or unassign them."""
    ctx = write_context(container, user, body, key, guarded=False)
    return Written.of(
        container.store.change_ward_staff(ctx, ChangeWardStaff(ward, body.user_id, body.change))
    )


@router.get(
    "/{ward}/staff", response_model=WardStaffPublic, dependencies=[Depends(require("admin"))]
)
def ward_staff(ward: WardName, container: ContainerDep) -> WardStaffPublic:
    """Who is assigned to the ward now."""
    staff = sorted(container.store.ward_staff(ward), key=str)
    return WardStaffPublic(ward=ward, staff=staff)
