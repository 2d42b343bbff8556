"""Bodies of login, the current user, password changes and user administration."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.api.schemas.common import Written
from services.auth import totp

RoleName = Literal[
    "front_desk", "nurse", "physician", "pharmacist", "lab_tech", "billing", "compliance", "admin"
]


def _totp_secret(value: str) -> str:
    return totp.validate_secret(value)  # InvalidSecret is a ValueError: a 422 on the field


TotpSecret = Annotated[
    str,
    Field(
        min_length=26,
        max_length=totp.MAX_SECRET_CHARS,
        pattern=r"^[A-Z2-7]+$",
        description="Base32 (RFC 4648, no padding) of at least 128 bits.",
    ),
    AfterValidator(_totp_secret),
]
Password = Annotated[str, Field(min_length=12, max_length=200)]


class TokenPublic(BaseModel):
    """A bearer token for ``Authorization: Bearer …``."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class MePublic(BaseModel):
    """Who the token belongs to."""

    user_id: UUID
    username: str
    role: str


class UserCreate(BaseModel):
    """Create a user account (the creation is an event in the store).

    Admin and compliance accounts always log in with a TOTP code: without ``totp_secret``
    one is generated and answered once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "dr.okafor",
                    "display_name": "Dr Okafor",
                    "role": "physician",
                    "password": "a long passphrase here",
                }
            ]
        },
    )

    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$")
    display_name: str = Field(min_length=1, max_length=200)
    role: RoleName
    password: Password
    totp_secret: TotpSecret | None = None


class AccountWritten(Written):
    """A user write's id and position, and the TOTP secret generated for the account (only
    in this answer: give it to the user for their authenticator app)."""

    totp_secret: str | None = None
    totp_uri: str | None = Field(default=None, description="otpauth:// URI (for a QR code).")
    status: Literal["done", "pending_approval"] = Field(
        default="done",
        description="pending_approval: an admin or compliance account or role waits for a "
        "second administrator (POST /v1/admin/users/{id}/approve).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f6a52-2c43-4b7e-9a8e-2f0c5e7d9a11",
                    "position": 42,
                    "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "totp_uri": "otpauth://totp/clinical-backbone:audit.lee?secret=JBSW…",
                }
            ]
        }
    )


class RoleChange(BaseModel):
    """Grant a role (replacing the current one); the user's sessions end."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "compliance"}]}
    )

    role: RoleName
    reason: str | None = Field(default=None, max_length=1000)


class Deactivation(BaseModel):
    """Deactivate an account, with the reason (its sessions end at once)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "left the hospital"}]}
    )

    reason: str = Field(min_length=3, max_length=1000)


class SessionRevocation(BaseModel):
    """End every session of a user (e.g. a lost badge or a stolen laptop)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "laptop reported stolen"}]}
    )

    reason: str | None = Field(default=None, max_length=1000)


class PasswordChange(BaseModel):
    """Change your password: the current one, and the new one (12 to 200 characters)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "current_password": "the old long passphrase",
                    "new_password": "a new and longer passphrase",
                }
            ]
        },
    )

    current_password: str = Field(min_length=1, max_length=200)
    new_password: Password
