"""Payloads of the access area: chart reads, break-glass, logins, users."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

from pydantic import Field

from events.domain.payloads.base import NonEmpty, Payload

Role = Literal[
    "front_desk", "nurse", "physician", "pharmacist", "lab_tech", "billing", "compliance", "admin"
]
ROLES: tuple[str, ...] = get_args(Role)


class ChartViewed(Payload):
    """Someone read patient data through the API: what, why, and whether under break-glass."""

    event_type = "chart.viewed"

    section: Literal["chart", "chart_as_of", "history", "results", "medications", "search", "fhir"]
    purpose: NonEmpty = "treatment"
    break_glass: bool = False


class BreakGlassGranted(Payload):
    """Emergency access to a patient outside the care team, until ``expires_at``."""

    event_type = "access.break_glass"

    expires_at: datetime


class AccessDenied(Payload):
    """A request was refused for who sent it (401) or what they may do (403).

    ``route`` is the route's template, never the path: ids travel in their own fields.
    ``kind`` is ``self_grant`` when someone tried to add themself to a care team."""

    event_type = "access.denied"

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    route: NonEmpty
    status: Literal[401, 403]
    kind: Literal["unauthenticated", "forbidden", "self_grant"]
    detail: NonEmpty
    patient_id: UUID | None = None
    client: str | None = Field(default=None, max_length=100)


class WardStaffChanged(Payload):
    """A user was assigned to a ward, or unassigned: the ward's nurses (and other clinical
    staff) join the care team of each patient whose encounter starts or moves there."""

    event_type = "ward.staff_changed"

    ward: NonEmpty = Field(max_length=200)
    user_id: UUID
    change: Literal["assigned", "unassigned"]
    role: str | None = None


class AuditRead(Payload):
    """Someone read the audit trail itself (access log, alerts, an export)."""

    event_type = "audit.read"

    what: Literal["access_log", "alerts", "denials", "export"]
    patient_id: UUID | None = None
    subject_user_id: UUID | None = None
    rows: int = Field(ge=0)


class UserCreated(Payload):
    """An administrator created a user account (credentials are kept outside the store)."""

    event_type = "user.created"

    username: NonEmpty
    display_name: NonEmpty
    role: Role
    # An admin or compliance account made by an administrator logs in only once a second
    # administrator approved it (``user.approved``).
    approval_required: bool = False


class UserRoleChangeRequested(Payload):
    """An administrator asked to make a user admin or compliance; a second one approves."""

    event_type = "user.role_change_requested"

    role: Role
    previous_role: Role


class UserApproved(Payload):
    """A second administrator approved a privileged account or role change: ``role`` holds."""

    event_type = "user.approved"

    role: Role
    requested_by: UUID


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


class UserDeactivated(Payload):
    """An administrator deactivated a user account: no more logins, its sessions ended."""

    event_type = "user.deactivated"

    username: NonEmpty


class UserPasswordChanged(Payload):
    """A user changed their password (the hash stays outside the store); other sessions ended."""

    event_type = "user.password_changed"

    sessions_ended: int = Field(ge=0)


class UserSessionsRevoked(Payload):
    """An administrator ended every open session of a user."""

    event_type = "user.sessions_revoked"

    sessions_ended: int = Field(ge=0)


class LoginThrottled(Payload):
    """One client address failed to log in too often: its logins wait until ``until``."""

    event_type = "auth.login_throttled"

    client_address: NonEmpty
    failures: int = Field(ge=1)
    until: datetime


class KeysRotated(Payload):
    """An operator rotated the master key: every data key re-wrapped, no event touched.

    Keys are named by fingerprint only (``events.store.keys.key_fingerprint``), never by
    value; ``retired_file`` is the old key's file name, kept until an operator deletes it."""

    event_type = "keys.rotated"

    data_keys: int = Field(ge=0)
    erased_keys: int = Field(ge=0)
    new_key: NonEmpty
    retired_key: NonEmpty
    retired_file: NonEmpty


class IdKeySeparated(Payload):
    """The key of hashed ids (MRN index, usernames) got its own file, apart from the master
    key; ``derived_from_master`` when it keeps the value existing ids were made with."""

    event_type = "keys.id_key_separated"

    id_key: NonEmpty
    derived_from_master: bool
