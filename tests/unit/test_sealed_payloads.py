"""Payloads on Kafka are sealed under their patient's key: opened only with it, in place only."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient
from events.domain.topics import ACCESS, OBSERVATIONS, PATIENTS, TopicNames
from events.store.kafka_payloads import (
    PayloadUnreadable,
    key_ref,
    open_sealed,
    seal,
    topic_key,
)
from events.store.keys import OPERATIONS_KEY_ID
from events.store.published import published_envelope
from projections.engine.applying import Decoded, Undecodable, decode_batch
from projections.engine.keyclient import KeyClient, KeysRefused, KeyUnknown
from services.keyservice.grants import KeyGrants, withheld_because
from services.keyservice.server import KeyServer, serve_in_thread, server_context
from services.local_stack.certificates import Authority, ensure_certificates
from tests.unit.conftest import NURSE, account, ctx
from tests.unit.test_write_side import registered


class Record:
    """A Kafka record as the runner sees one."""

    def __init__(self, topic: str, envelope: dict[str, Any] | bytes) -> None:
        self.topic = topic
        self.value = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()


class AuditedGrants(KeyGrants):
    """The key service's grants with the audit rows kept in a list."""

    def __init__(self, store: ClinicalStore) -> None:
        super().__init__(store.payload_keys, None, store.name)  # type: ignore[arg-type]
        self.rows: list[tuple[str, str, UUID, str]] = []

    def _audit(self, principal: str, topic: str, ids: Any, found: Any, refused: Any) -> None:
        for key_id in ids.values():
            outcome = refused or withheld_because(found, key_id) or "ok"
            self.rows.append((principal, topic, key_id, outcome))


class InProcessClient(KeyClient):
    """A key client answered by the grants directly (no TLS), counting its requests."""

    def __init__(self, grants: KeyGrants, principal: str = "projections") -> None:
        super().__init__("https://127.0.0.1:1", Path("ca"), Path("c"), Path("k"), ttl_s=60)
        self.grants, self.principal = grants, principal
        self.requests: list[tuple[str, list[str]]] = []
        self.now = 0.0
        self.clock = lambda: self.now

    def _post(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        self.requests.append((request["topic"], request["patient_ids"]))
        answer = self.grants.answer(self.principal, request["topic"], request["patient_ids"])
        body = {"topic": answer.topic, "keys": answer.keys, "unknown": list(answer.unknown)}
        return 200, json.dumps(body).encode()


def sealed_log(store: ClinicalStore) -> list[tuple[str, dict[str, Any]]]:
    events = store.event_log.after(0, 1000).events
    return list(zip([e.topic for e in events], store.payload_keys.published(events), strict=True))


def test_the_relay_seals_payload_and_reason_and_keeps_the_envelope_readable(
    store: ClinicalStore,
) -> None:
    patient = registered(store, "MRN-S1")
    store.record_vitals(ctx(NURSE, reason="after the fall"), RecordVitals(patient, heart_rate=71))

    (_, registration), (_, vitals) = sealed_log(store)[-2:]
    wire = json.dumps([registration, vitals])
    assert "Okonkwo" not in wire and "MRN-S1" not in wire and "after the fall" not in wire
    assert registration["event_type"] == "patient.registered"
    assert registration["patient_id"] == str(patient) and registration["position"] >= 1
    assert registration["envelope_version"] == 3 and registration["payload"] is None
    assert registration["store"] == store.name
    assert registration["payload_encrypted"]["key"] == "patient"
    assert key_ref(registration) == str(patient)

    keys = store.payload_keys.for_subscribers(PATIENTS.name, {patient})
    key = keys[patient]
    assert key is not None
    opened = open_sealed(registration, key)
    assert opened["payload"]["family_name"] == "Okonkwo"
    clear = published_envelope(store.event_log.of_patient(patient)[0])
    assert {
        k: v
        for k, v in opened.items()
        if k not in ("envelope_version", "payload_encrypted", "store")
    } == clear
    vitals_key = store.payload_keys.for_subscribers(OBSERVATIONS.name, {patient})[patient]
    assert vitals_key is not None and vitals_key != key  # one subkey per topic
    assert open_sealed(vitals, vitals_key)["reason"] == "after the fall"


def test_events_about_no_patient_are_sealed_under_the_service_key(store: ClinicalStore) -> None:
    account(store, "nurse.s2", "nurse")  # user administration: about no patient
    users = [(t, e) for t, e in sealed_log(store) if e["patient_id"] is None]
    assert users and all(e["payload_encrypted"]["key"] == "service" for _, e in users)
    topic, envelope = users[0]
    key = store.payload_keys.for_subscribers(topic, {OPERATIONS_KEY_ID})[OPERATIONS_KEY_ID]
    assert key is not None and key_ref(envelope) == "service"
    assert open_sealed(envelope, key)["payload"] is not None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(position=e["position"] + 1),
        lambda e: e.update(patient_id="00000000-0000-4000-8000-00000000abcd"),
        lambda e: e.update(event_type="patient.demographics_updated"),
        lambda e: e["actor"].update(role="admin"),
        lambda e: e.update(erased=True),
        lambda e: e["payload_encrypted"].update(
            ciphertext=e["payload_encrypted"]["ciphertext"][:-4] + "AAAA"
        ),
    ],
    ids=["position", "patient", "type", "actor", "erased-flag", "ciphertext"],
)
def test_an_altered_envelope_fails_to_open(store: ClinicalStore, tamper: Any) -> None:
    patient = registered(store, "MRN-S3")
    _, envelope = sealed_log(store)[-1]
    key = store.payload_keys.for_subscribers(PATIENTS.name, {patient})[patient]
    assert key is not None
    altered = json.loads(json.dumps(envelope))
    tamper(altered)
    with pytest.raises(PayloadUnreadable, match="authentication"):
        open_sealed(altered, key)


def test_a_payload_moved_to_another_topic_or_envelope_fails_to_open(
    store: ClinicalStore,
) -> None:
    first, second = registered(store, "MRN-S4"), registered(store, "MRN-S5")
    (_, one), (_, two) = sealed_log(store)[-2:]
    key = store.payload_keys.for_subscribers(PATIENTS.name, {first})[first]
    other_topic = store.payload_keys.for_subscribers(ACCESS.name, {first})[first]
    assert key is not None and other_topic is not None
    with pytest.raises(PayloadUnreadable):
        open_sealed(one, other_topic)
    swapped = {**two, "payload_encrypted": one["payload_encrypted"]}
    second_key = store.payload_keys.for_subscribers(PATIENTS.name, {second})[second]
    assert second_key is not None
    with pytest.raises(PayloadUnreadable):
        open_sealed(swapped, second_key)
    assert seal(published_envelope(store.event_log.of_patient(first)[0]), key, "patient") != one


def test_after_erasure_the_key_is_gone_and_the_batch_decodes_as_erased(
    store: ClinicalStore,
) -> None:
    gone, kept = registered(store, "MRN-E1"), registered(store, "MRN-E2")
    store.record_vitals(ctx(NURSE), RecordVitals(gone, heart_rate=80))
    before = sealed_log(store)  # published before the erasure, still on Kafka
    store.forget(ctx(reason="patient's request"), ErasePatient(gone, "GDPR art. 17"))
    assert store.payload_keys.for_subscribers(PATIENTS.name, {gone, kept}) == {
        gone: None,
        kept: store.payload_keys.for_subscribers(PATIENTS.name, {kept})[kept],
    }
    after = sealed_log(store)
    erasure = after[-1][1]
    assert erasure["event_type"] == "patient.erased" and erasure["erased"] is True
    assert erasure["payload_encrypted"]["key"] == "service"
    republished = [e for _, e in after if e["patient_id"] == str(gone)][:-1]
    assert republished and all(e["erased"] and "payload_encrypted" not in e for e in republished)

    grants = AuditedGrants(store)
    client = InProcessClient(grants)
    records = [Record(t, e) for t, e in before if e["patient_id"] in (str(gone), str(kept))]
    decoded = decode_batch(records, client, TopicNames(), store.name)
    assert all(isinstance(d, Decoded) for d in decoded)
    by_patient = {str(d.envelope.patient_id): d for d in decoded if isinstance(d, Decoded)}
    assert by_patient[str(gone)].envelope.erased and by_patient[str(gone)].payload is None
    assert by_patient[str(kept)].payload is not None
    assert sorted(topic for topic, _ in client.requests) == sorted(
        {r.topic for r in records}
    )  # one request per topic for the whole batch
    assert any(row[3] == "erased" for row in grants.rows)


def test_the_client_caches_keys_for_its_ttl_and_never_an_erased_answer_as_usable(
    store: ClinicalStore,
) -> None:
    patient = registered(store, "MRN-C1")
    topic, envelope = sealed_log(store)[-1]
    client = InProcessClient(AuditedGrants(store))
    assert client.open(topic, envelope)["payload"]["mrn"] == "MRN-C1"
    client.open(topic, envelope)
    assert len(client.requests) == 1
    store.forget(ctx(reason="patient's request"), ErasePatient(patient, "GDPR art. 17"))
    client.now += 61  # the cached key expires; the service now answers null
    assert client.open(topic, envelope)["erased"] is True
    assert client.open(topic, envelope)["payload"] is None
    assert len(client.requests) == 2


def test_a_key_the_store_never_had_is_refused_for_the_dead_letter_topic_not_read_as_erased(
    store: ClinicalStore,
) -> None:
    patient = registered(store, "MRN-U1")
    topic, envelope = sealed_log(store)[-1]
    stranger = UUID(int=patient.int ^ 1)
    foreign = {**envelope, "patient_id": str(stranger)}  # another store's patient
    grants = AuditedGrants(store)

    assert store.payload_keys.for_subscribers(topic, {stranger, patient}).keys() == {patient}
    mine, theirs = decode_batch(
        [Record(topic, envelope), Record(topic, foreign)],
        InProcessClient(grants),
        TopicNames(),
        store.name,
    )

    assert isinstance(mine, Decoded) and mine.payload is not None
    assert isinstance(theirs, Undecodable) and "not an erasure" in str(theirs)
    with pytest.raises(KeyUnknown):
        InProcessClient(grants).open(topic, foreign)
    assert (stranger, "unknown key") in [(row[2], row[3]) for row in grants.rows]
    assert (patient, "ok") in [(row[2], row[3]) for row in grants.rows]


def test_a_tampered_message_or_clear_version_2_is_undecodable_for_the_dead_letter_topic(
    store: ClinicalStore,
) -> None:
    registered(store, "MRN-T1")
    topic, envelope = sealed_log(store)[-1]
    moved = {**envelope, "position": envelope["position"] + 100}
    clear = {"payload": {"mrn": "x"}, "payload_encrypted": None}
    clear_v2 = {**envelope, **clear, "envelope_version": 2}
    clear_v3 = {**envelope, **clear}
    no_patient = {**envelope, "patient_id": "not-a-uuid"}
    decoded = decode_batch(
        [
            Record(topic, moved),
            Record(topic, clear_v2),
            Record(topic, clear_v3),
            Record(topic, b"not json"),
            Record(topic, no_patient),
        ],
        InProcessClient(AuditedGrants(store)),
        TopicNames(),
        store.name,
    )
    assert [str(d) for d in decoded] == [
        "payload fails authentication (altered or moved)",
        "envelope version 2 with a payload in clear",
        "envelope version 3 with a payload in clear",
        "invalid envelope: not JSON",
        "sealed under a patient's key but patient_id is no UUID",
    ]
    assert all(isinstance(d, Undecodable) for d in decoded)


def test_keys_derive_per_topic_and_the_subkey_is_not_the_data_key() -> None:
    data_key = bytes(range(32))
    assert topic_key(data_key, "clinical.patients") != topic_key(data_key, "clinical.results")
    assert topic_key(data_key, "clinical.patients") != data_key


# -- the key service over TLS ------------------------------------------------------------
@pytest.fixture
def tls(tmp_path: Path) -> Authority:
    ensure_certificates(tmp_path, ["projections", "pharmacy"])
    return Authority(tmp_path)


@pytest.fixture
def served(store: ClinicalStore, tls: Authority) -> Iterator[tuple[KeyServer, AuditedGrants]]:
    grants = AuditedGrants(store)
    context = server_context(tls.ca.cert, tls.server.cert, tls.server.key)
    server = KeyServer(("127.0.0.1", 0), grants, context)
    thread = serve_in_thread(server)
    yield server, grants
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def tls_client(server: KeyServer, tls: Authority, principal: str) -> KeyClient:
    pair = tls.client(principal)
    return KeyClient(f"https://127.0.0.1:{server.port}", tls.ca.cert, pair.cert, pair.key)


def test_the_key_service_answers_by_certificate_and_refuses_a_topic_not_granted(
    store: ClinicalStore, served: tuple[KeyServer, AuditedGrants], tls: Authority
) -> None:
    server, grants = served
    account(store, "nurse.k1", "nurse")
    patient: UUID = registered(store, "MRN-K1")
    _, access = next((t, e) for t, e in sealed_log(store) if t == ACCESS.name)
    topic, registration = sealed_log(store)[-1]

    projections = tls_client(server, tls, "projections")
    assert projections.open(topic, registration)["payload"]["mrn"] == "MRN-K1"
    assert projections.open(ACCESS.name, access)["payload"] is not None
    pharmacy = tls_client(server, tls, "pharmacy")
    assert pharmacy.open(topic, registration)["payload"]["mrn"] == "MRN-K1"
    with pytest.raises(KeysRefused):
        pharmacy.open(ACCESS.name, access)
    assert ("projections", PATIENTS.name, patient, "ok") in grants.rows
    assert ("pharmacy", ACCESS.name, OPERATIONS_KEY_ID, "topic not granted") in grants.rows


def test_the_key_service_refuses_a_connection_without_a_client_certificate(
    served: tuple[KeyServer, AuditedGrants], tls: Authority
) -> None:
    server, grants = served
    context = ssl.create_default_context(cafile=str(tls.ca.cert))  # no certificate of ours
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=context)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        conn.request("POST", "/v1/keys", body=b'{"topic": "clinical.patients"}')
        conn.getresponse().read()
    conn.close()
    assert grants.rows == []
