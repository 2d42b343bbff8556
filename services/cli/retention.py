"""``backbone retention report | apply [--dry-run] | hold | release``."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from events.store.application import utc_now
from services.bootstrap import Backbone
from services.cli.operator import OperatorOption, operator_actor
from services.observability.progress import progress_bars
from services.retention import Expired, RetentionPolicy

app = typer.Typer(help="Retention policy and legal holds.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

OPERATORS = ("compliance", "admin")


def _policy() -> RetentionPolicy:
    return Backbone().retention()


def _scan(policy: RetentionPolicy) -> list[Expired]:
    head = policy.store.event_log.head()
    with progress_bars(err) as progress:
        task = progress.add_task("scanning the store", total=head)
        return policy.expired(utc_now(), lambda n: progress.advance(task, n))


def _print(expired: list[Expired]) -> None:
    for entry in expired:
        console.print(
            json.dumps(
                {
                    "patient_id": str(entry.patient_id),
                    "last_event_at": entry.last_event_at.isoformat(),
                    "expired_at": entry.expired_at.isoformat(),
                    "legal_hold": entry.on_hold,
                }
            ),
            soft_wrap=True,
        )


@app.command()
def report() -> None:
    """List patients whose retention has expired (JSON lines), with their legal-hold flag."""
    expired = _scan(_policy())
    _print(expired)
    held = sum(e.on_hold for e in expired)
    err.print(f"retention: {len(expired)} patients expired, {held} on legal hold")


@app.command()
def apply(
    operator: OperatorOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Erase expired patients without a legal hold (through the normal erasure path)."""
    policy = _policy()
    actor = operator_actor(policy.store, operator, *OPERATORS)
    expired = _scan(policy)
    if dry_run:
        _print([e for e in expired if not e.on_hold])
        err.print(
            f"retention (dry run): would erase {sum(not e.on_hold for e in expired)} patients"
        )
        return
    erased = policy.apply(expired, actor)
    err.print(
        f"retention: erased {len(erased)} patients, {len(expired) - len(erased)} on legal hold"
    )


@app.command()
def hold(
    patient_id: Annotated[UUID, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason")],
    operator: OperatorOption,
) -> None:
    """Place a legal hold: retention will not erase this patient."""
    policy = _policy()
    policy.hold(patient_id, reason, operator_actor(policy.store, operator, *OPERATORS))
    console.print(f"legal hold placed on {patient_id}")


@app.command()
def release(patient_id: Annotated[UUID, typer.Argument()], operator: OperatorOption) -> None:
    """Release a legal hold."""
    policy = _policy()
    operator_actor(policy.store, operator, *OPERATORS)
    released = policy.release(patient_id)
    console.print(f"legal hold {'released' if released else 'was not set'} on {patient_id}")
