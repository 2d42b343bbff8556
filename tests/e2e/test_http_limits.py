"""Bounded work over HTTP, against the real API, relay and projection processes: a body cap
before anything buffers, rate limits, reads that wait for a projection answering 503 within
their bound without starving anyone, history by cursor, safe headers, docs behind a token."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import pytest

from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, join_care_team, running_backbone

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
WAIT_S = 1.5
SEARCHES_PER_MINUTE = 5
METRICS_TOKEN = "m" * 40
LIMITS = {
    "BACKBONE_READ_WAIT_TIMEOUT_S": str(WAIT_S),
    "BACKBONE_RATE_LIMIT_SEARCH": f"{SEARCHES_PER_MINUTE}/minute",
    "BACKBONE_PUBLIC_DOCS": "false",
    "BACKBONE_METRICS_TOKEN": METRICS_TOKEN,
}
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMITS.items():
            env.setenv(name, value)
        with running_backbone(tmp_path_factory.mktemp("limits"), settings, 3600) as running:
            yield running


def mrn() -> str:
    return f"LIM-{uuid.uuid4().hex[:10]}"


def patient_on_team(backbone: Backbone, *roles: str) -> tuple[UUID, int]:
    physician = backbone.login("physician")
    answer = physician.post(
        "/v1/patients",
        json={
            "mrn": mrn(),
            "family_name": "Limitperson",
            "given_names": ["Ada"],
            "birth_date": "1970-01-02",
            "sex": "female",
        },
    )
    assert answer.status_code == 201, answer.text
    patient = UUID(answer.json()["id"])
    join_care_team(backbone, patient, *roles)
    return patient, int(answer.json()["position"])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def api_pid(backbone: Backbone) -> int:
    return backbone.processes[-1].pid  # the harness starts the API last


@contextmanager
def projections_stopped(backbone: Backbone) -> Iterator[None]:
    """The projection process frozen: the store takes writes, the read tables fall behind."""
    process = backbone.processes[1]  # relay, projections, pharmacy, lab-routing, api
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def assert_security_headers(answer: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (name, answer.headers)
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "max-age=" in answer.headers["strict-transport-security"]  # served over HTTPS


def test_a_200_mb_body_with_its_length_declared_is_refused_before_a_byte_is_read(
    backbone: Backbone,
) -> None:
    address = urlsplit(backbone.url)
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as raw,
        backbone.verify.wrap_socket(raw, server_hostname=address.hostname) as conn,
    ):
        conn.sendall(
            b"POST /v1/patients HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {200 * MiB}\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk

    head = answer.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 413"), head
    assert "content-type: application/problem+json" in head
    assert "cache-control: no-store" in head
    assert time.monotonic() - started < 5


def test_a_200_mb_chunked_unauthenticated_body_is_cut_off_without_being_buffered(
    backbone: Backbone,
) -> None:
    pid = api_pid(backbone)
    before = rss_bytes(pid)
    block = b"x" * MiB
    sent = [0]

    def body() -> Iterator[bytes]:  # no Content-Length: the server has to count
        for _ in range(200):
            sent[0] += len(block)
            yield block

    started = time.monotonic()
    try:
        with httpx.Client(base_url=backbone.url, timeout=30, verify=backbone.verify) as client:
            status: int | None = client.post(
                "/v1/patients", content=body(), headers={"Content-Type": "application/json"}
            ).status_code
    except httpx.TransportError:
        status = None  # the server answered 413 and closed while we were still sending
    elapsed = time.monotonic() - started

    assert status in (None, 413, 401)
    assert sent[0] < 64 * MiB, f"the server read {sent[0] // MiB} MiB before refusing"
    assert elapsed < 15
    assert rss_bytes(pid) - before < 64 * MiB
    assert backbone.client().get("/healthz").status_code == 200


def test_a_chart_and_a_401_carry_no_store_and_the_security_headers(backbone: Backbone) -> None:
    patient, position = patient_on_team(backbone, "physician")
    physician = backbone.login("physician")

    chart = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
    anonymous = backbone.client().get(f"/v1/patients/{patient}/chart")

    assert chart.status_code == 200, chart.text
    assert_security_headers(chart)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert_security_headers(anonymous)


def test_repeated_searches_answer_429_with_retry_after_and_other_users_still_search(
    backbone: Backbone,
) -> None:
    front_desk, nurse = backbone.login("front_desk"), backbone.login("nurse")

    answers = [
        front_desk.get("/v1/patients", params={"name": "Nobody"})
        for _ in range(SEARCHES_PER_MINUTE + 1)
    ]
    other = nurse.get("/v1/patients", params={"name": "Nobody"})

    assert [a.status_code for a in answers] == [200] * SEARCHES_PER_MINUTE + [429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert_security_headers(refused)
    assert other.status_code == 200


def test_reads_waiting_on_a_projection_that_is_behind_answer_503_in_time_and_spare_others(
    backbone: Backbone,
) -> None:
    patient, registered = patient_on_team(backbone, "physician", "nurse")
    physician, nurse = backbone.login("physician"), backbone.login("nurse")
    caught_up = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": registered})
    assert caught_up.status_code == 200, caught_up.text

    with projections_stopped(backbone):
        allergy = physician.post(
            f"/v1/patients/{patient}/allergies",
            json={"substance": "penicillin", "reaction": "rash", "severity": "moderate"},
        )
        assert allergy.status_code == 201, allergy.text
        behind = allergy.json()["position"]
        unprojected, _ = patient_on_team(backbone, "physician")

        def waiting_read(_: int) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            with httpx.Client(base_url=backbone.url, timeout=30, verify=backbone.verify) as client:
                client.headers["Authorization"] = physician.headers["Authorization"]
                answer = client.get(
                    f"/v1/patients/{patient}/chart", params={"min_position": behind}
                )
            return answer, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=21) as pool:
            waiting = [pool.submit(waiting_read, n) for n in range(20)]
            time.sleep(0.3)  # pacing, not a wait for consistency: the reads are under way
            started = time.monotonic()
            plain = nurse.get(f"/v1/patients/{patient}/chart")
            plain_s = time.monotonic() - started
            answers = [f.result() for f in waiting]
        new_patient = physician.get(
            f"/v1/patients/{unprojected}/chart", params={"min_position": behind}
        )
        new_patient_plain = physician.get(f"/v1/patients/{unprojected}/chart")

    assert plain.status_code == 200, plain.text
    assert plain_s < WAIT_S, "another user's plain read waited behind the stuck ones"
    for answer, took in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert int(answer.headers["Retry-After"]) >= 1
        assert int(answer.headers["X-Projection-Position"]) < behind
        assert took < WAIT_S + 3
    for answer in (new_patient, new_patient_plain):
        assert answer.status_code == 503, answer.text  # it exists: never a 404
        assert "Retry-After" in answer.headers
    assert wait_until(
        lambda: (
            physician.get(
                f"/v1/patients/{unprojected}/chart", params={"min_position": behind}
            ).status_code
            == 200
        ),
        30,
        0.2,
    )
    beyond = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": 10**12})
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "min_position"


def test_history_pages_by_cursor_and_caps_the_page_size(backbone: Backbone) -> None:
    patient, _ = patient_on_team(backbone, "physician")
    physician, compliance = backbone.login("physician"), backbone.login("compliance")
    for substance in ("penicillin", "latex", "peanut", "iodine"):
        answer = physician.post(
            f"/v1/patients/{patient}/allergies",
            json={"substance": substance, "reaction": "rash", "severity": "mild"},
        )
        assert answer.status_code == 201, answer.text
    path = f"/v1/patients/{patient}/history"
    whole = compliance.get(path, params={"page_size": 500}).json()
    assert whole["next_cursor"] is None and len(whole["events"]) >= 6

    pages, after = [], 0
    while True:
        page = compliance.get(path, params={"page_size": 2, "after": after})
        assert page.status_code == 200, page.text
        assert len(page.json()["events"]) <= 2
        pages.append(page.json()["events"])
        if page.json()["next_cursor"] is None:
            break
        after = page.json()["next_cursor"]
    too_big = compliance.get(path, params={"page_size": 501})

    reads_since = {"chart.viewed"}  # each page read is itself recorded, after the first
    joined = [e for p in pages for e in p if e["event_type"] not in reads_since]
    assert joined == [e for e in whole["events"] if e["event_type"] not in reads_since]
    assert all(len(p) == 2 for p in pages[:-1])
    assert too_big.status_code == 422


def test_docs_and_metrics_need_a_token_when_docs_are_not_public(backbone: Backbone) -> None:
    anonymous, physician = backbone.client(), backbone.login("physician")
    scraper = backbone.client()
    scraper.headers["Authorization"] = f"Bearer {METRICS_TOKEN}"

    assert anonymous.get("/openapi.json").status_code == 401
    assert anonymous.get("/docs").status_code == 401
    assert physician.get("/openapi.json").json()["info"]["title"] == "clinical-backbone API"
    assert anonymous.get("/metrics").status_code == 401
    assert physician.get("/metrics").status_code == 403
    assert "backbone_http_request_seconds" in scraper.get("/metrics").text
    assert anonymous.get("/healthz").status_code == 200


def test_readiness_polled_hard_opens_no_connection_per_call(backbone: Backbone) -> None:
    client = backbone.client()
    pid = api_pid(backbone)

    def sockets() -> int:
        return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if "socket" in _link(fd))

    client.get("/readyz")  # the first check opens the process's clients, once
    before = sockets()
    answers, started = [], time.monotonic()
    while time.monotonic() - started < 3:  # past the 2 s cache: some calls check afresh
        answers += [client.get("/readyz").status_code, client.get("/metrics").status_code]

    assert len(answers) > 20 and set(answers) <= {200, 401, 503}
    assert sockets() - before <= 1


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def test_the_access_log_pages_by_cursor_newest_first_without_repeating(
    backbone: Backbone,
) -> None:
    patient, position = patient_on_team(backbone, "physician")
    physician, compliance = backbone.login("physician"), backbone.login("compliance")
    for _ in range(5):
        read = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
        assert read.status_code == 200, read.text

    params: dict[str, str | int] = {"patient_id": str(patient), "limit": 2}
    first = compliance.get("/v1/audit/access", params=params)
    second = compliance.get(
        "/v1/audit/access", params={**params, "cursor": first.headers["X-Next-Cursor"]}
    )
    forged = compliance.get("/v1/audit/access", params={**params, "cursor": "bm90LWEtY3Vyc29y"})

    assert first.status_code == 200 and len(first.json()) == 2
    assert 'rel="next"' in first.headers["Link"]
    ids = [r["event_id"] for r in first.json() + second.json()]
    assert len(ids) == len(set(ids)) == 4
    times = [r["recorded_at"] for r in first.json() + second.json()]
    assert times == sorted(times, reverse=True)
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"


def test_the_pharmacy_queue_pages_by_cursor(backbone: Backbone) -> None:
    patient, _ = patient_on_team(backbone, "physician")
    physician, pharmacist = backbone.login("physician"), backbone.login("pharmacist")
    last = 0
    for drug_code, drug_name in (("29046", "lisinopril"), ("6809", "metformin")):
        answer = physician.post(
            f"/v1/patients/{patient}/medications",
            json={
                "drug_code": drug_code,
                "drug_name": drug_name,
                "dose": 10 if drug_code == "29046" else 500,
                "dose_unit": "mg",
                "route": "oral",
                "frequency": "daily",
            },
        )
        assert answer.status_code == 201, answer.text
        last = answer.json()["position"]

    first = pharmacist.get("/v1/pharmacy/queue", params={"min_position": last, "limit": 1})
    assert first.status_code == 200, first.text
    second = pharmacist.get(
        "/v1/pharmacy/queue", params={"limit": 1, "cursor": first.headers["X-Next-Cursor"]}
    )

    assert second.status_code == 200, second.text
    assert len(first.json()) == len(second.json()) == 1
    assert first.json()[0]["item_id"] != second.json()[0]["item_id"]
