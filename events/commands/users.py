"""Commands about users and logins: accounts, roles, failed logins and lockouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.commands.base import CommandContext, CommandCore, CommandResult, command
from events.domain.aggregates import users
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import NotFound
from events.domain.payloads import access as acc


@dataclass(frozen=True)
class CreateUser:
    """A user account with one role."""

    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class ChangeUserRole:
    """A user's new role."""

    user_id: UUID
    role: str


@dataclass(frozen=True)
class RecordLoginFailure:
    """A failed login for a username (which may not exist)."""

    username: str
    attempt: int


@dataclass(frozen=True)
class RecordLockout:
    """A username locked out until a moment."""

    username: str
    until: datetime


SYSTEM = CommandContext(actor=SYSTEM_ACTOR)


class UserCommands(CommandCore):
    """The write API of users and logins."""

    def user_id_for(self, username: str) -> UUID:
        """A stable user id per username: the store itself keeps usernames unique."""
        return self.keyed_id(b"user:" + username.strip().lower().encode())

    def _user(self, user_id: UUID) -> users.User:
        user = self.load(user_id, users.evolve)
        if user is None:
            raise NotFound("user", user_id)
        return user

    @command
    def create_user(self, ctx: CommandContext, cmd: CreateUser) -> CommandResult:
        user_id = self.user_id_for(cmd.username)
        request = acc.UserCreated.model_validate(
            {"username": cmd.username, "display_name": cmd.display_name, "role": cmd.role}
        )
        return self.change(
            ctx,
            user_id,
            lambda: self.load(user_id, users.evolve),
            lambda existing, _: users.create(user_id, existing, request),
            None,
            on_conflict=users.DuplicateUsername(user_id),
        )

    @command
    def change_user_role(self, ctx: CommandContext, cmd: ChangeUserRole) -> CommandResult:
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.change_role(user, cmd.role),
            None,
        )

    def record_login_failure(self, cmd: RecordLoginFailure) -> CommandResult:
        payload = acc.LoginFailed(username=cmd.username, attempt=cmd.attempt)
        return self.start(SYSTEM, self.new_id(), None, lambda _: payload)

    def record_lockout(self, cmd: RecordLockout) -> CommandResult:
        payload = acc.LockedOut(username=cmd.username, until=cmd.until)
        return self.start(SYSTEM, self.new_id(), None, lambda _: payload)
