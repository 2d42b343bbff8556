"""``backbone forget PATIENT_ID``: the operator's erasure path (audited as the system actor)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from events.commands.base import CommandContext
from events.commands.patients import ErasePatient
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.errors import DomainError
from services.bootstrap import Backbone

console = Console()
err = Console(stderr=True)


def forget(
    patient_id: Annotated[UUID, typer.Argument(help="The patient's id (never an MRN).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis")] = "retention or erasure request",
) -> None:
    """Destroy the patient's data key and record ``patient.erased``; projections purge."""
    backbone = Backbone()
    try:
        result = backbone.store.forget(
            CommandContext(actor=SYSTEM_ACTOR, reason=reason), ErasePatient(patient_id, legal_basis)
        )
    except DomainError as exc:
        err.print(f"[red]not erased:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        backbone.close()
    console.print(f"erased {patient_id} at position {result.position}")
