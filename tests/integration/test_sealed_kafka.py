"""PHI on Kafka is sealed under the patient's key; erasure shreds every copy downstream."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient, RegisterPatient
from events.domain.topics import ACCESS, PATIENTS
from events.settings import StoreSettings
from projections.chart import fetch_chart
from projections.engine.database import read_pool
from projections.engine.keyclient import KeyClient, KeysRefused, KeyUnknown
from projections.engine.service import start_at_end
from projections.registry import ALL
from services.bootstrap import service_pool
from services.keyservice.server import KeyServer
from services.settings import ServiceSettings
from tests.integration.contract_reader import ContractReader
from tests.integration.key_service import serving_keys
from tests.integration.projection_harness import caught_up, isolated_settings, running_projections
from tests.integration.relaying import build_relay, relay_status
from tests.integration.test_relay import RelayThread
from tests.unit.conftest import NURSE, ctx

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(
    pg_store: ClinicalStore, store_settings: StoreSettings, settings: ServiceSettings
) -> Iterator[KeyServer]:
    with serving_keys(pg_store, store_settings, settings) as server:
        yield server


def client(server: KeyServer, settings: ServiceSettings, principal: str) -> KeyClient:
    tls: Path = settings.tls_dir
    return KeyClient(
        f"https://127.0.0.1:{server.port}",
        tls / "ca.pem",
        tls / "clients" / f"{principal}.pem",
        tls / "clients" / f"{principal}.key",
    )


def key_fetches(store_settings: StoreSettings, patient: uuid.UUID, columns: str) -> list[Any]:
    """The key service's audit rows of one patient (``columns`` of ``<store>_key_fetches``)."""
    pool = service_pool(store_settings, max_size=2)
    try:
        with pool.connection() as conn:
            return conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE patient_id = %s").format(
                    sql.SQL(columns), sql.Identifier(f"{store_settings.store_name}_key_fetches")
                ),
                (patient,),
            ).fetchall()
    finally:
        pool.close()


def test_kafka_carries_no_phi_the_projections_still_chart_and_erasure_shreds_every_copy(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    keys: KeyServer,
) -> None:
    # Given a patient with a recognisable name and MRN, and a vitals reading with a reason
    run = uuid.uuid4().hex[:8].upper()
    family, mrn = f"Zyxwquist{run.lower()}", f"SEAL-{run}"
    patient = pg_store.register_patient(
        ctx(),
        RegisterPatient(
            mrn=mrn,
            family_name=family,
            given_names=("Ottilie",),
            birth_date=date(1950, 1, 2),
            sex="female",
        ),
    ).id
    pg_store.record_vitals(ctx(NURSE, reason=f"seen by {family}"), RecordVitals(patient, 64))
    reader = ContractReader(settings)
    read_settings = isolated_settings(store_settings).model_copy(
        update={"key_service_port": keys.port}
    )
    reads = read_pool(read_settings)
    start_at_end(reads, read_settings, ALL)

    # When the relay publishes it and the projections consume it
    try:
        with (
            RelayThread(build_relay(settings, store_settings)),
            running_projections(reads, read_settings),
        ):
            arrived = reader.poll_until(
                lambda r: len(r.envelopes) >= 2, 60, lambda e: e["patient_id"] == str(patient)
            )

            def published() -> bool:
                state, head = relay_status(settings, store_settings)
                return state.position >= head

            assert caught_up(reads, read_settings, published=published)
            with reads.connection() as conn:
                chart = fetch_chart(conn, patient)
    finally:
        reader.close()
        reads.close()

    # Then nothing on the wire names the patient, yet the chart does
    assert arrived
    raw = json.dumps(reader.envelopes)
    assert family not in raw and mrn not in raw and "Ottilie" not in raw
    assert all(e["payload"] is None and e["payload_encrypted"] for e in reader.envelopes)
    assert chart is not None and chart.body["patient"]["family_name"] == family
    names = settings.topic_names  # this test session's topics
    registration = next(
        (names.of(t), e)
        for t, e in zip(reader.topics, reader.envelopes, strict=True)
        if e["event_type"] == "patient.registered"
    )
    projections = client(keys, settings, "projections")
    assert projections.open(*registration)["payload"]["mrn"] == mrn

    # and every key handed out was recorded: who, which topic, which patient, granted
    rows = key_fetches(store_settings, patient, "principal, topic, granted")
    assert ("projections", names.of(PATIENTS.name), True) in rows
    assert any(principal == "operator" and granted for principal, _, granted in rows)

    # When the patient is erased
    pg_store.forget(ctx(reason="erasure request"), ErasePatient(patient, "GDPR art. 17"))

    # Then the key service answers null, and the copy read off Kafka can no longer be opened
    assert pg_store.payload_keys.for_subscribers(PATIENTS.name, {patient}) == {patient: None}
    fresh = client(keys, settings, "projections")
    shredded = fresh.open(*registration)
    assert shredded["erased"] is True and shredded["payload"] is None


def test_a_principal_gets_no_keys_for_a_topic_it_may_not_read(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    keys: KeyServer,
) -> None:
    patient = pg_store.register_patient(
        ctx(),
        RegisterPatient(
            mrn=f"DENY-{uuid.uuid4().hex[:8]}",
            family_name="Refused",
            given_names=("Ray",),
            birth_date=date(1970, 3, 4),
            sex="male",
        ),
    ).id
    events = pg_store.event_log.of_patient(patient)
    (envelope,) = pg_store.payload_keys.published(events)
    pharmacy = client(keys, settings, "pharmacy")
    patients, access = settings.topic_names.names((PATIENTS.name, ACCESS.name))
    assert pharmacy.open(patients, envelope)["payload"]["family_name"] == "Refused"
    moved = {**envelope}  # the pharmacy is not granted clinical.access
    with pytest.raises(KeysRefused):
        pharmacy.open(access, moved)
    pool = service_pool(store_settings, max_size=2)
    try:
        with pool.connection() as conn:
            refused = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} WHERE principal = 'pharmacy' AND topic = %s "
                    "AND NOT granted AND reason = 'topic not granted'"
                ).format(sql.Identifier(f"{store_settings.store_name}_key_fetches")),
                (access,),
            ).fetchone()
    finally:
        pool.close()
    assert refused == (1,)


def test_a_message_whose_key_this_store_never_had_is_not_taken_for_an_erasure(
    pg_store: ClinicalStore,
    store_settings: StoreSettings,
    settings: ServiceSettings,
    keys: KeyServer,
) -> None:
    # Given a registration as the relay seals it, and a copy naming a patient this store
    # never knew (a message from another store's deployment on the same cluster)
    mrn = f"SEAL-{uuid.uuid4().hex[:8]}"
    patient = pg_store.register_patient(
        ctx(),
        RegisterPatient(mrn, "Quellbrook", ("Ida",), date(1961, 3, 4), "female"),
    ).id
    (sealed,) = pg_store.payload_keys.published(pg_store.event_log.of_patient(patient))
    stranger = uuid.uuid4()
    foreign = {**sealed, "patient_id": str(stranger)}
    projections = client(keys, settings, "projections")

    # When a consumer opens the foreign copy, then it stops with why, instead of getting the
    # erased form that would make it purge the patient
    topic = settings.topic_names.of(PATIENTS.name)
    with pytest.raises(KeyUnknown, match="not an erasure"):
        projections.open(topic, foreign)
    assert pg_store.payload_keys.for_subscribers(PATIENTS.name, {stranger}) == {}

    # and the store's own message still opens, and the fetch is on record as an unknown key
    assert projections.open(topic, sealed)["payload"]["mrn"] == mrn
    assert key_fetches(store_settings, stranger, "reason") == [("unknown key",)]
