"""Commands about users and logins: accounts, roles, deactivation, password changes, session
revocations, failed logins, lockouts and throttled client addresses."""

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
class DeactivateUser:
    """End a user's account: no more logins (the reason is the context's)."""

    user_id: UUID


@dataclass(frozen=True)
class RecordPasswordChange:
    """A user's password was replaced; ``sessions_ended`` of their sessions were ended."""

    user_id: UUID
    sessions_ended: int


@dataclass(frozen=True)
class RevokeUserSessions:
    """An administrator ended ``sessions_ended`` open sessions of a user."""

    user_id: UUID
    sessions_ended: int


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


@dataclass(frozen=True)
class RecordThrottledAddress:
    """A client address that failed too often, held back until a moment."""

    client_address: str
    failures: int
    until: datetime


@dataclass(frozen=True)
class ApproveUser:
    """A second administrator approves the user's pending privileged account or role."""

    user_id: UUID


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
            lambda existing, _: users.create(user_id, existing, request, ctx.actor),
            None,
            on_conflict=users.DuplicateUsername(user_id),
        )

    @command
    def change_user_role(self, ctx: CommandContext, cmd: ChangeUserRole) -> CommandResult:
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.change_role(user, cmd.role, ctx.actor),
            None,
        )

    @command
    def approve_user(self, ctx: CommandContext, cmd: ApproveUser) -> CommandResult:
        """A second administrator approves a privileged account or role change."""
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.approve(
                user, self.load(ctx.actor.user_id, users.evolve), ctx.actor
            ),
            None,
        )

    @command
    def deactivate_user(self, ctx: CommandContext, cmd: DeactivateUser) -> CommandResult:
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.deactivate(user, ctx.actor.user_id, ctx.reason),
            None,
        )

    @command
    def record_password_change(
        self, ctx: CommandContext, cmd: RecordPasswordChange
    ) -> CommandResult:
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.change_password(user, cmd.sessions_ended),
            None,
        )

    @command
    def revoke_user_sessions(self, ctx: CommandContext, cmd: RevokeUserSessions) -> CommandResult:
        return self.change(
            ctx,
            cmd.user_id,
            lambda: self._user(cmd.user_id),
            lambda user, _: users.revoke_sessions(user, cmd.sessions_ended),
            None,
        )

    def record_login_failure(self, cmd: RecordLoginFailure) -> CommandResult:
        payload = acc.LoginFailed(username=cmd.username, attempt=cmd.attempt)
        return self.start(SYSTEM, self.new_id(), None, lambda _: payload)

    def record_lockout(self, cmd: RecordLockout) -> CommandResult:
        payload = acc.LockedOut(username=cmd.username, until=cmd.until)
        return self.start(SYSTEM, self.new_id(), None, lambda _: payload)

    def record_throttled_address(self, cmd: RecordThrottledAddress) -> CommandResult:
        payload = acc.LoginThrottled(
            client_address=cmd.client_address, failures=cmd.failures, until=cmd.until
        )
        return self.start(SYSTEM, self.new_id(), None, lambda _: payload)
