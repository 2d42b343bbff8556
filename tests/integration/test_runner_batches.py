"""A polled batch whose message fails to apply: the rest apply, that one is dead-lettered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from psycopg import Cursor
from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.domain.topics import OBSERVATIONS
from events.settings import StoreSettings
from events.store.published import published_envelope
from projections.engine.base import MessageRefused, Projection
from projections.engine.database import create_tables, read_pool
from projections.engine.deadletter import DeadLetter
from projections.engine.kafka_clients import kafka_connection
from projections.engine.runner import ProjectionHalted, ProjectionRunner
from projections.engine.service import projection_statuses, start_at_end
from projections.engine.state import stored_offsets
from projections.settings import ProjectionSettings
from tests.integration.projection_harness import isolated_settings
from tests.integration.test_store_postgres import register
from tests.unit.conftest import NURSE, ctx

pytestmark = pytest.mark.integration

DDL = "CREATE TABLE IF NOT EXISTS seen (position bigint PRIMARY KEY, heart_rate float8)"


def remember(cur: Cursor[Any], envelope: Any, payload: Any) -> None:
    if payload.heart_rate == 13:
        raise MessageRefused("this handler cannot take 13")
    cur.execute("INSERT INTO seen VALUES (%s, %s)", (envelope.position, payload.heart_rate))


PICKY = Projection(
    name="picky",
    topics=(OBSERVATIONS.name,),
    tables=("seen",),
    ddl=DDL,
    handlers={"vitals.recorded": remember},
    purge=lambda _cur, _patient: None,
)


@dataclass
class Record:
    """What the runner reads of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@pytest.fixture
def picky_side(
    store_settings: StoreSettings,
) -> Iterator[tuple[ProjectionSettings, ConnectionPool]]:
    settings = isolated_settings(store_settings)
    pool = read_pool(settings)
    with pool.connection() as conn:
        create_tables(conn, settings.read_schema, (PICKY,))
    yield settings, pool
    pool.close()


def test_one_message_failing_to_apply_is_dead_lettered_and_the_rest_of_the_batch_applies(
    pg_store: ClinicalStore, picky_side: tuple[ProjectionSettings, ConnectionPool]
) -> None:
    settings, pool = picky_side
    patient = register(pg_store, "MRN-RB1")
    for heart_rate in (60, 13, 80):
        pg_store.record_vitals(ctx(NURSE), RecordVitals(patient, heart_rate=heart_rate))
    stored = pg_store.event_log.after(0, 10).events
    topic = settings.topic_names.of(OBSERVATIONS.name)  # this session's topic
    records = [
        Record(
            topic,
            0,
            offset,
            str(patient).encode(),
            json.dumps(published_envelope(n)).encode(),
            [],
        )
        for offset, n in enumerate(x for x in stored if x.event_type == "vitals.recorded")
    ]
    deadletter = DeadLetter(kafka_connection(settings), "test-runner-batches")
    runner = ProjectionRunner(PICKY, pool, settings, deadletter)
    try:
        applied, deadlettered = runner.process({TopicPartition(topic, 0): records})
    finally:
        deadletter.close()

    assert (applied, deadlettered) == (2, 1)
    with pool.connection() as conn:
        seen = [r[0] for r in conn.execute("SELECT heart_rate FROM seen ORDER BY position")]
        offset = conn.execute(
            "SELECT next_offset FROM projection_offsets WHERE projection = 'picky'"
        ).fetchone()
    assert seen == [60.0, 80.0]
    assert offset is not None and offset[0] == 3


def careless(cur: Cursor[Any], envelope: Any, payload: Any) -> None:
    if payload.heart_rate == 13:
        payload.no_such_field.upper()  # a bug of ours, not a problem of the message
    cur.execute("INSERT INTO seen VALUES (%s, %s)", (envelope.position, payload.heart_rate))


CARELESS = Projection(
    name="careless",
    topics=(OBSERVATIONS.name,),
    tables=("seen",),
    ddl=DDL,
    handlers={"vitals.recorded": careless},
    purge=lambda _cur, _patient: None,
)


def test_a_handler_bug_halts_the_projection_instead_of_dead_lettering_clinical_data(
    pg_store: ClinicalStore, store_settings: StoreSettings
) -> None:
    # given a projection whose handler has a bug that one vital-signs message triggers
    settings = isolated_settings(store_settings)
    pool = read_pool(settings)
    start_at_end(pool, settings, (CARELESS,))
    patient = register(pg_store, "MRN-RB2")
    for heart_rate in (60, 13, 80):
        pg_store.record_vitals(ctx(NURSE), RecordVitals(patient, heart_rate=heart_rate))
    producer = KafkaProducer(**kafka_connection(settings).client_kwargs(), acks="all")
    for logged in pg_store.event_log.after(0, 10).events:
        if logged.event_type == "vitals.recorded":
            value = json.dumps(published_envelope(logged)).encode()
            producer.send(
                settings.topic_names.of(OBSERVATIONS.name), key=str(patient).encode(), value=value
            )
    producer.flush()
    producer.close()
    deadletter = DeadLetter(kafka_connection(settings), "test-runner-halts")
    runner = ProjectionRunner(CARELESS, pool, settings, deadletter)
    with pool.connection() as conn:
        offsets_before = stored_offsets(conn.cursor(), "careless")

    # when it runs / then it halts, says so in its status, and keeps nothing of the batch
    try:
        with pytest.raises(ProjectionHalted, match="AttributeError"):
            runner.run(threading.Event())
    finally:
        deadletter.close()
    [status] = projection_statuses(pool, (CARELESS,))
    assert status.halted is not None and "AttributeError" in status.halted
    assert status.deadlettered_total == 0
    with pool.connection() as conn:
        assert stored_offsets(conn.cursor(), "careless") == offsets_before
        assert conn.execute("SELECT count(*) FROM seen").fetchone() == (0,)
    pool.close()
