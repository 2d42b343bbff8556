"""``backbone forget PATIENT_ID``: the operator's erasure path, two-person like the API's.

The first operator's call records the request; the same command run by a second operator
carries it out. Both are named in the audit trail (``--operator``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from events.commands.patients import ErasePatient
from events.domain.errors import DomainError
from services.bootstrap import Backbone
from services.cli.operator import OperatorOption, operator_context

console = Console()
err = Console(stderr=True)

ERASERS = ("admin", "compliance")


def forget(
    patient_id: Annotated[UUID, typer.Argument(help="The patient's id (never an MRN).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    operator: OperatorOption,
    legal_basis: Annotated[str, typer.Option("--legal-basis")] = "retention or erasure request",
) -> None:
    """Request (or, as a second operator, approve) the patient's erasure: their data key is
    destroyed and ``patient.erased`` recorded; projections purge."""
    backbone = Backbone()
    try:
        ctx = operator_context(backbone, operator, *ERASERS, reason=reason)
        result, erased = backbone.store.request_erasure(ctx, ErasePatient(patient_id, legal_basis))
    except DomainError as exc:
        err.print(f"[red]not erased:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        backbone.close()
    if erased:
        console.print(f"erased {patient_id} at position {result.position}")
    else:
        console.print(
            f"erasure of {patient_id} requested (request {result.id}); a second operator "
            "must run the same command to carry it out"
        )
