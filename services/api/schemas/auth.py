"""Bodies of login, the current user and user administration."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal[
    "front_desk", "nurse", "physician", "pharmacist", "lab_tech", "billing", "compliance", "admin"
]


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
    """Create a user account (the creation is an event in the store)."""

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
    password: str = Field(min_length=12, max_length=200)
    totp_secret: str | None = Field(default=None, pattern=r"^[A-Z2-7]{16,64}$")


class RoleChange(BaseModel):
    """Grant a role (replacing the current one); the user's sessions end."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "compliance"}]}
    )

    role: RoleName
    reason: str | None = Field(default=None, max_length=1000)
