"""Deployments sharing one Kafka cluster never mix: a topic prefix each, a store in each envelope.

After ``make bench``, a ``make run`` on the same machine once applied the bench's events
from the shared topics (21,540 patients in ``read.patients`` for a store of 430). Each
deployment now has its own topics (``BACKBONE_TOPIC_PREFIX`` before the contract's names),
and a consumer refuses, for the dead-letter topic, an envelope another store published.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka.admin import ACLResourcePatternType, ResourceType

from events.application import ClinicalStore
from events.domain.topics import ALL_TOPICS, DEADLETTER, PATIENTS, TopicNames
from events.store.kafka_payloads import store_refusal
from events.store.published import PublishedEnvelope
from projections.engine.applying import Decoded, Undecodable, decode_batch
from projections.engine.kafka_clients import kafka_connection
from projections.settings import ProjectionSettings
from services.keyservice.grants import Refused
from services.local_stack.kafka_acls import wanted_acls
from services.relay.publisher import KafkaPublisher, message_for
from services.settings import ServiceSettings
from tests.unit.test_sealed_payloads import AuditedGrants, InProcessClient, Record, sealed_log
from tests.unit.test_write_side import registered

SITE_B = TopicNames("site-b.")


def test_the_default_prefix_is_empty_so_the_documented_names_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BACKBONE_TOPIC_PREFIX", raising=False)
    for settings in (ServiceSettings(), ProjectionSettings()):
        assert settings.topic_prefix == ""
        assert settings.topic_names.of(PATIENTS.name) == "clinical.patients"
    assert [t.name for t in TopicNames().all()] == [t.name for t in ALL_TOPICS]


def test_the_prefix_comes_from_the_environment_and_reaches_every_kafka_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKBONE_TOPIC_PREFIX", "site-b.")
    for settings in (ServiceSettings(), ProjectionSettings()):
        assert kafka_connection(settings).topics == SITE_B
    assert SITE_B.of(PATIENTS.name) == "site-b.clinical.patients"
    assert SITE_B.names((PATIENTS.name, DEADLETTER.name)) == (
        "site-b.clinical.patients",
        "site-b.clinical.deadletter",
    )
    created = SITE_B.all()
    assert [t.name for t in created] == [f"site-b.{t.name}" for t in ALL_TOPICS]
    assert [t.configs() for t in created] == [t.configs() for t in ALL_TOPICS]
    assert [t.partitions for t in created] == [t.partitions for t in ALL_TOPICS]


def test_a_kafka_name_maps_back_to_its_contract_name_only_under_its_own_prefix() -> None:
    assert SITE_B.logical("site-b.clinical.patients") == "clinical.patients"
    assert SITE_B.logical("clinical.patients") is None  # the unprefixed deployment's
    assert SITE_B.logical("site-c.clinical.patients") is None
    assert SITE_B.logical("site-b.") is None
    assert TopicNames().logical("clinical.patients") == "clinical.patients"


@pytest.mark.parametrize("prefix", ["site b.", "site/b.", "é.", "x" * 240])
def test_a_prefix_kafka_would_refuse_is_refused_at_settings(prefix: str) -> None:
    with pytest.raises(ValueError, match="topic prefix"):
        ProjectionSettings(topic_prefix=prefix)


def test_the_relay_publishes_to_its_deployments_topics() -> None:
    sent: list[str] = []

    class Acknowledged:
        def get(self, timeout: float) -> None:
            del timeout

    class Producer:
        def send(self, topic: str, **_: Any) -> Acknowledged:
            sent.append(topic)
            return Acknowledged()

    connection = kafka_connection(ProjectionSettings(topic_prefix="site-b."), "relay")
    publisher = KafkaPublisher(connection, "relay-test", flush_timeout_s=2.0)
    publisher._producer = Producer()
    envelope = {"event_type": "patient.registered", "schema_version": 1}
    publisher.publish([message_for(PATIENTS.name, b"p", envelope)])
    assert sent == ["site-b.clinical.patients"]


def test_acls_are_granted_on_the_deployments_topics_only() -> None:
    default, site_b = wanted_acls(), wanted_acls(topics=SITE_B)
    topics = {
        a.resource_pattern.resource_name
        for a in site_b
        if a.resource_pattern.resource_type == ResourceType.TOPIC
    }
    assert topics == {t.name for t in SITE_B.all()}
    assert all(
        a.resource_pattern.pattern_type == ACLResourcePatternType.LITERAL
        for a in site_b
        if a.resource_pattern.resource_type == ResourceType.TOPIC
    )
    groups = {a for a in site_b if a.resource_pattern.resource_type == ResourceType.GROUP}
    assert groups and groups <= default  # consumer groups are shared by every deployment
    assert not {a for a in site_b if a.resource_pattern.resource_type == ResourceType.TOPIC} & (
        default
    )


def test_the_key_service_maps_its_own_prefixed_topics_and_a_prefix_changes_no_key(
    store: ClinicalStore,
) -> None:
    patient = registered(store, "MRN-D1")
    plain, prefixed = AuditedGrants(store), AuditedGrants(store)
    prefixed.topics = SITE_B
    refs = [str(patient)]

    here = prefixed.answer("projections", "site-b.clinical.patients", refs)
    assert here.keys == plain.answer("projections", "clinical.patients", refs).keys
    assert here.keys[str(patient)] is not None and here.topic == "site-b.clinical.patients"
    for elsewhere in ("clinical.patients", "site-c.clinical.patients", DEADLETTER.name):
        with pytest.raises(Refused):
            prefixed.answer("projections", elsewhere, refs)
    assert ("projections", "clinical.patients", patient, "topic not granted") in prefixed.rows
    # The same message opens under either prefix: the subkey is the contract topic's.
    _, envelope = sealed_log(store)[-1]
    client = InProcessClient(prefixed)
    assert client.open("site-b.clinical.patients", envelope)["payload"]["mrn"] == "MRN-D1"


def test_every_envelope_the_relay_publishes_names_its_store(store: ClinicalStore) -> None:
    registered(store, "MRN-D2")
    published = [envelope for _, envelope in sealed_log(store)]
    assert published and {e["store"] for e in published} == {store.name}
    assert {e["envelope_version"] for e in published} == {3}


def test_store_refusal_names_both_stores_and_accepts_only_older_unnamed_envelopes() -> None:
    assert store_refusal({"store": "clinical", "envelope_version": 3}, "clinical") is None
    assert (
        store_refusal({"store": "bench1a2b", "envelope_version": 3}, "clinical")
        == "from store bench1a2b, this deployment is store clinical"
    )
    # Published before envelopes named their store: taken as this store's.
    assert store_refusal({"envelope_version": 2}, "clinical") is None
    assert store_refusal({}, "clinical") is None
    assert store_refusal({"envelope_version": 3}, "clinical") == "envelope version 3 names no store"
    assert store_refusal({"envelope_version": 4}, "clinical") == "envelope version 4 names no store"


def test_the_envelope_model_refuses_version_3_without_its_store() -> None:
    with pytest.raises(ValueError, match="names its store"):
        PublishedEnvelope.model_validate(
            {**_ANY_ENVELOPE, "envelope_version": 3, "payload": None, "erased": True}
        )


def test_a_consumer_refuses_another_stores_envelope_before_asking_for_any_key(
    store: ClinicalStore,
) -> None:
    registered(store, "MRN-D3")
    topic, envelope = sealed_log(store)[-1]
    theirs = {**envelope, "store": "bench1a2b"}
    unnamed = {**envelope}
    del unnamed["store"]
    client = InProcessClient(AuditedGrants(store))

    mine, foreign, nameless = decode_batch(
        [Record(topic, envelope), Record(topic, theirs), Record(topic, unnamed)],
        client,
        TopicNames(),
        store.name,
    )

    assert isinstance(mine, Decoded) and mine.payload is not None
    assert isinstance(foreign, Undecodable)
    assert str(foreign) == f"from store bench1a2b, this deployment is store {store.name}"
    assert isinstance(nameless, Undecodable)
    assert str(nameless) == "envelope version 3 names no store"
    assert [ids for _, ids in client.requests] == [[str(mine.envelope.patient_id)]]


def test_a_prefixed_consumer_decodes_its_topics_under_the_contract_names(
    store: ClinicalStore,
) -> None:
    registered(store, "MRN-D4")
    topic, envelope = sealed_log(store)[-1]
    grants = AuditedGrants(store)
    grants.topics = SITE_B
    client = InProcessClient(grants)

    ours, stray = decode_batch(
        [Record(SITE_B.of(topic), envelope), Record(topic, envelope)],
        client,
        SITE_B,
        store.name,
    )

    assert isinstance(ours, Decoded) and ours.topic == topic and ours.payload is not None
    assert isinstance(stray, Undecodable) and "not a topic of this deployment" in str(stray)
    assert [asked for asked, _ in client.requests] == [SITE_B.of(topic)]


_ANY_ENVELOPE: dict[str, Any] = json.loads(
    """{"event_id": "00000000-0000-4000-8000-000000000001", "event_type": "patient.registered",
    "schema_version": 1, "patient_id": null, "aggregate_id": "00000000-0000-4000-8000-000000000002",
    "aggregate_version": 1, "position": 1, "occurred_at": null,
    "recorded_at": "2024-01-01T00:00:00+00:00",
    "actor": {"user_id": "00000000-0000-4000-8000-000000000003", "role": "physician"},
    "reason": null, "correlation_id": "00000000-0000-4000-8000-000000000004",
    "causation_id": null}"""
)
