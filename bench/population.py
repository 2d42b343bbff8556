"""Synthetic patients and their history, loaded through the store's bulk import path.

Every event goes through the same decisions, envelopes, encryption, patient index and hash
chain as a clinical command; only the transaction is shared (``ClinicalStore.importing``).
The people and values come from ``services.synthetic``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from uuid import UUID

from bench.progress import Progress
from bench.stack import BenchStack
from events.application import ClinicalStore
from events.commands.access import ChangeCareTeam
from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR, Actor
from services.synthetic import DEFAULT_SEED, Synthetic, indexed_vitals

BATCH = 500
Tick = Callable[[int], None]


def register_patients(
    store: ClinicalStore, actor: Actor, tag: str, count: int, tick: Tick | None = None
) -> list[UUID]:
    """Register ``count`` patients in import batches; their ids."""
    people = Synthetic(DEFAULT_SEED, mrn_prefix=f"B{tag}-")
    ids: list[UUID] = []
    for start in range(0, count, BATCH):
        with store.importing():
            ids.extend(
                store.register_patient(CommandContext(actor=actor), people.registration(i)).id
                for i in range(start, min(start + BATCH, count))
            )
        if tick is not None:
            tick(min(BATCH, count - start))
    return ids


def give_history(
    store: ClinicalStore,
    actor: Actor,
    patients: list[UUID],
    clinicians: list[UUID],
    tick: Tick | None = None,
) -> None:
    """Per patient: its clinicians on the care team, an allergy and a set of vitals."""
    ctx = CommandContext(actor=actor)
    people = Synthetic(DEFAULT_SEED)
    for step in range(len(clinicians)):
        for start in range(0, len(patients), BATCH):
            with store.importing():
                for i, patient in enumerate(patients[start : start + BATCH], start):
                    store.change_care_team(ctx, ChangeCareTeam(patient, clinicians[step], "added"))
                    if step == 0:
                        store.record_vitals(ctx, indexed_vitals(patient, i))
                    elif step == 1:
                        store.record_allergy(ctx, people.allergy(patient))
            if tick is not None:
                tick(len(patients[start : start + BATCH]))


def grow(store: ClinicalStore, actor: Actor, patients: list[UUID], target: int, tick: Tick) -> None:
    """Add vitals to random patients until the store holds ``target`` events."""
    ctx = CommandContext(actor=actor)
    head = store.event_log.head()
    pick = random.Random(7)
    while head < target:
        count = min(BATCH * 4, target - head)
        with store.importing() as batch:
            for i in range(count):
                store.record_vitals(ctx, indexed_vitals(pick.choice(patients), head + i))
        head = max(r.position for r in batch.results)
        tick(count)


def populate(stack: BenchStack, count: int, tag: str, progress: Progress) -> list[UUID]:
    """``count`` patients with a care team (both bench users), vitals and an allergy."""
    task = progress.task("population", count * 3)
    tick = progress.ticker(task)
    patients = register_patients(stack.store, SYSTEM_ACTOR, tag, count, tick)
    give_history(
        stack.store, SYSTEM_ACTOR, patients, [stack.users["physician"], stack.users["nurse"]], tick
    )
    stack.wait_caught_up()
    return patients
