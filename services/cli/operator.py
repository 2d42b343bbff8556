"""Who runs a CLI action: ``--operator``, a backbone account, defaulting to the OS user.

Erasure, retention and audit exports are recorded under the operator's own account and
role, never under the shared system actor, so the audit trail names a person. An unknown,
deactivated or unsuitable account stops the command before anything is written.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.domain.aggregates import users
from events.domain.envelope import Actor
from services.bootstrap import Backbone

err = Console(stderr=True)

OperatorOption = Annotated[
    str,
    typer.Option(
        "--operator",
        default_factory=getpass.getuser,
        show_default="the OS user",
        help="The backbone account running this (it is named in the audit trail).",
    ),
]


def operator_actor(store: ClinicalStore, username: str, *roles: str) -> Actor:
    """The operator's account as an actor, or a message and exit code 2."""
    name = username.strip().lower()
    user = store.load(store.user_id_for(name), users.evolve)
    if user is None:
        err.print(f"[red]no backbone account named {name!r}[/red]: pass --operator USERNAME")
        raise typer.Exit(2)
    if not user.may_log_in:
        err.print(f"[red]the account {name!r} is deactivated or not yet approved[/red]")
        raise typer.Exit(2)
    if user.role not in roles:
        err.print(f"[red]{name!r} is a {user.role}; this needs one of: {', '.join(roles)}[/red]")
        raise typer.Exit(2)
    return Actor(user_id=user.id, role=user.role)


def operator_context(
    backbone: Backbone, username: str, *roles: str, reason: str | None = None
) -> CommandContext:
    """A command context naming the operator (see ``operator_actor``)."""
    actor = operator_actor(backbone.store, username, *roles)
    return CommandContext(actor=actor, reason=reason)
