"""``/v1/auth/token`` (OAuth2 password form), ``/v1/auth/logout``, ``/v1/me`` and
``/v1/me/password``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from services.api.deps import ContainerDep, CurrentUser
from services.api.examples import ME, TOKEN, UNAUTHENTICATED, example
from services.api.problems import problem
from services.api.schemas.auth import MePublic, PasswordChange, TokenPublic
from services.api.schemas.common import Written
from services.auth.addresses import client_address
from services.auth.throttle import LoginThrottled

router = APIRouter(tags=["auth"])

RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer"}}
THROTTLED: dict[int | str, dict[str, Any]] = {
    status_code: {
        "description": description,
        "headers": {"Retry-After": RETRY_AFTER},
        "content": {
            "application/problem+json": {
                "example": {
                    "type": f"https://clinical-backbone.dev/problems/{kind}",
                    "title": title,
                    "status": status_code,
                    "detail": detail,
                }
            }
        },
    }
    for status_code, kind, title, description, detail in (
        (
            423,
            "locked",
            "Locked",
            "Too many failures for this account from this address: wait, or use another one",
            "too many failed logins for this account from this address",
        ),
        (
            429,
            "rate-limited",
            "Too many requests",
            "Too many failed logins from this address",
            "too many failed logins from this address; try again later",
        ),
    )
}


def requester(request: Request, container: ContainerDep) -> str:
    """The client address a login is counted against."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("X-Forwarded-For")
    return client_address(peer, forwarded, container.settings.trusted_proxies)


Requester = Annotated[str, Depends(requester)]


def throttled(exc: LoginThrottled) -> JSONResponse:
    """The 423 (this account from this address) or 429 (this address) answer."""
    if exc.status == 423:
        kind, title = "locked", "Locked"
    else:
        kind, title = "rate-limited", "Too many requests"
    extra = {"locked_until": exc.locked_until.isoformat()} if exc.locked_until else {}
    return problem(
        exc.status,
        title,
        str(exc),
        kind,
        headers={"Retry-After": str(exc.retry_after_s)},
        retry_after_s=exc.retry_after_s,
        **extra,
    )


@router.post(
    "/v1/auth/token",
    response_model=TokenPublic,
    responses={**example(TOKEN), **THROTTLED},
)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    container: ContainerDep,
    client: Requester,
    otp: Annotated[str | None, Form(max_length=10)] = None,
) -> TokenPublic | JSONResponse:
    """Log in with username and password, and ``otp`` (the TOTP code) where set up; admin
    and compliance accounts always need it."""
    try:
        issued = container.auth.login(form.username, form.password, otp, client)
    except LoginThrottled as exc:
        return throttled(exc)
    return TokenPublic(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED)
def logout(container: ContainerDep, user: CurrentUser) -> None:
    """End the current session."""
    container.auth.logout(user)


@router.get("/v1/me", response_model=MePublic, responses=example(ME))
def me(user: CurrentUser) -> MePublic:
    """Who you are logged in as."""
    return MePublic(user_id=user.user_id, username=user.username, role=user.role)


@router.post(
    "/v1/me/password",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
    responses=THROTTLED,
)
def change_password(
    body: PasswordChange, container: ContainerDep, user: CurrentUser, client: Requester
) -> Written | JSONResponse:
    """Change your password (the current one is checked); your other sessions end."""
    try:
        result = container.auth.change_password(
            user, body.current_password, body.new_password, client
        )
    except LoginThrottled as exc:
        return throttled(exc)
    return Written.of(result)
