"""Why a login or a request's credentials were refused."""

from __future__ import annotations

from datetime import datetime

from events.domain.errors import DomainError


class AuthenticationFailed(Exception):
    """Wrong credentials, a held-back login, or an invalid, expired or idle session."""

    def __init__(self, detail: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(detail)
        self.locked_until = locked_until


class CurrentPasswordWrong(DomainError):
    """A password change named the wrong current password."""

    def __init__(self) -> None:
        super().__init__("the current password is not right", field="current_password")


class CredentialRefused(DomainError):
    """A password or TOTP secret that the policy refuses."""
