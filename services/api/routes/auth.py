"""``/v1/auth/token`` (OAuth2 password form), ``/v1/auth/logout`` and ``/v1/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, status
from fastapi.security import OAuth2PasswordRequestForm

from services.api.deps import ContainerDep, CurrentUser
from services.api.examples import ME, TOKEN, UNAUTHENTICATED, example
from services.api.schemas.auth import MePublic, TokenPublic

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/token", response_model=TokenPublic, responses=example(TOKEN))
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    container: ContainerDep,
    otp: Annotated[str | None, Form(max_length=10)] = None,
) -> TokenPublic:
    """Log in with username and password (and ``otp`` where TOTP is set up)."""
    issued = container.auth.login(form.username, form.password, otp)
    return TokenPublic(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED)
def logout(container: ContainerDep, user: CurrentUser) -> None:
    """End the current session."""
    container.auth.logout(user)


@router.get("/v1/me", response_model=MePublic, responses=example(ME))
def me(user: CurrentUser) -> MePublic:
    """Who you are logged in as."""
    return MePublic(user_id=user.user_id, username=user.username, role=user.role)
