"""Append: clinical commands into the PostgreSQL store vs raw one-row INSERT transactions.

Eight writers send single-event commands (vital signs, each loading and checking the
patient first); the baseline is eight connections committing rows of the same size. The
bulk import path is measured against raw batched INSERTs of the same number of rows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from bench.measure import Load, hammer, ratio
from bench.population import register_patients
from bench.progress import Progress
from bench.raw import batch_inserts, raw_table, single_inserts
from bench.sizes import Sizes
from bench.stack import BenchStack
from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR, Actor
from services.synthetic import indexed_vitals

WRITERS = 8


def vitals_load(
    stack: BenchStack, patients: list[UUID], each: int, tick: Callable[[int], None]
) -> Load:
    """``WRITERS`` threads each sending ``each`` vital-sign commands (one event apiece)."""
    nurse = CommandContext(actor=Actor(user_id=stack.users["nurse"], role="nurse"))

    def command(worker: int, i: int) -> None:
        patient = patients[(worker * 4 + i) % len(patients)]
        stack.store.record_vitals(nurse, indexed_vitals(patient, i))
        tick(1)

    return hammer(WRITERS, command, each=each)


def run(stack: BenchStack, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    store = stack.store
    url = stack.store_settings.database_url
    commands = WRITERS * sizes.append_each
    task = progress.task("append", sizes.import_patients + commands * 2 + sizes.import_patients)

    began = time.perf_counter()
    register_patients(store, SYSTEM_ACTOR, "append", sizes.import_patients, progress.ticker(task))
    batch_rate = sizes.import_patients / (time.perf_counter() - began)
    patients = register_patients(store, SYSTEM_ACTOR, "writers", WRITERS * 4)

    before = store.group_commit_totals()
    backbone = vitals_load(stack, patients, sizes.append_each, progress.ticker(task))
    after = store.group_commit_totals()
    sizes_of = [
        logged.stored_bytes
        for logged in store.event_log.after(max(stack.head() - 200, 0), 200).events
    ]
    size = int(statistics.mean(sizes_of))
    with raw_table(url) as table:
        raw = single_inserts(url, table, WRITERS, sizes.append_each, size)
        progress.advance(task, commands)
        raw_batch = batch_inserts(url, table, sizes.import_patients, 500, size)
        progress.advance(task, sizes.import_patients)
    shared = after[0] - before[0]
    return {
        "events_per_s": round(backbone.per_s, 1),
        "raw_per_s": round(raw.per_s, 1),
        "ratio": ratio(backbone.per_s, raw.per_s),
        "p50_ms": backbone.p(50),
        "p99_ms": backbone.p(99),
        "raw_p99_ms": raw.p(99),
        "writers": WRITERS,
        "commands": backbone.operations,
        "errors": backbone.errors,
        "event_bytes": size,
        "commands_per_transaction": round((after[1] - before[1]) / shared, 2) if shared else 0,
        "batch_events_per_s": round(batch_rate, 1),
        "batch_raw_per_s": round(sizes.import_patients / raw_batch.seconds, 1),
        "batch_ratio": ratio(batch_rate, sizes.import_patients / raw_batch.seconds),
    }
