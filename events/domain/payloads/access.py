"""Payloads of the access area: chart reads, break-glass, logins, users."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import Field

from events.domain.payloads.base import NonEmpty, Payload

Role = Literal[
    "front_desk", "nurse", "physician", "pharmacist", "lab_tech", "billing", "compliance", "admin"
]
ROLES: tuple[str, ...] = get_args(Role)


class ChartViewed(Payload):
    """Someone read patient data through the API: what, why, and whether under break-glass."""

    event_type = "chart.viewed"

    section: Literal["chart", "chart_as_of", "history", "results", "medications", "search"]
    purpose: NonEmpty = "treatment"
    break_glass: bool = False


class BreakGlassGranted(Payload):
    """Emergency access to a patient outside the care team, until ``expires_at``."""

    event_type = "access.break_glass"

    expires_at: datetime


class UserCreated(Payload):
    """An administrator created a user account (credentials are kept outside the store)."""

    event_type = "user.created"

    username: NonEmpty
    display_name: NonEmpty
    role: Role


class UserRolesChanged(Payload):
    """An administrator changed a user's role."""

    event_type = "user.roles_changed"

    role: Role
    previous_role: Role


class LoginFailed(Payload):
    """A login attempt failed."""

    event_type = "auth.login_failed"

    username: NonEmpty
    attempt: int = Field(ge=1)


class LockedOut(Payload):
    """An account was locked after repeated failed logins."""

    event_type = "auth.locked_out"

    username: NonEmpty
    until: datetime
