"""HTTP hardening without servers: settings that refuse to start, the body cap and security
headers as ASGI middleware, rate limits, cached health checks, cursors, history pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.types import Message, Receive, Scope, Send

from events.application import ClinicalStore
from events.commands.access import RecordChartView
from events.commands.medications import ChangeMedication
from events.store.history import history_entries, history_page
from services.api import cursors
from services.api.guards import Cached, RateLimited, RateLimits
from services.api.middleware import BodyLimit, SecurityHeaders
from services.settings import Refused, ServiceSettings, get_settings
from tests.unit.conftest import NURSE, ctx
from tests.unit.test_write_side import _amoxicillin, registered

MiB = 1024 * 1024


# -- settings ------------------------------------------------------------------------------


def test_outside_development_the_service_refuses_to_start_without_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKBONE_ENVIRONMENT", "production")
    monkeypatch.setenv("BACKBONE_POSTGRES_PASSWORD", "backbone")
    get_settings.cache_clear()
    try:
        with pytest.raises(Refused) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()

    message = str(refused.value)
    assert message.startswith("backbone: refusing to start:")
    assert "BACKBONE_POSTGRES_PASSWORD" in message
    assert ":backbone@" not in message  # the reason, never the value


def test_development_settings_serve_only_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ServiceSettings(api_host="0.0.0.0")  # noqa: S104 - the address being refused
    assert ServiceSettings(api_host="127.0.0.1").environment == "development"


def test_docs_are_public_by_default_only_in_development() -> None:
    production = {
        "environment": "production",
        "postgres_password": "s3cret-s3cret",
        "database_url": "postgresql://backbone:s3cret-s3cret@db:5432/backbone",
    }
    assert ServiceSettings().docs_are_public
    assert not ServiceSettings(**production).docs_are_public  # type: ignore[arg-type]
    assert ServiceSettings(**production, public_docs=True).docs_are_public  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        ServiceSettings(**production, metrics_token="short")  # type: ignore[arg-type]


# -- the body cap, at the ASGI level -------------------------------------------------------


class Recorder:
    """An ASGI app that reads the whole body and answers how much it read."""

    def __init__(self) -> None:
        self.called = False
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def http_scope(headers: list[tuple[bytes, bytes]], path: str = "/v1/patients") -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers,
        "scheme": "http",
        "query_string": b"",
    }


def chunks(size: int, count: int) -> tuple[Callable[[], Awaitable[Message]], list[int]]:
    """A client streaming ``count`` chunks of ``size`` bytes; how many it was asked for."""
    asked = [0]

    async def receive() -> Message:
        asked[0] += 1
        more = asked[0] < count
        return {"type": "http.request", "body": b"x" * size, "more_body": more}

    return receive, asked


def run(app: Any, scope: Scope, receive: Callable[[], Awaitable[Message]]) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_declared_body_over_the_cap_is_refused_before_the_application_runs() -> None:
    inner = Recorder()
    receive, asked = chunks(64 * 1024, 3200)  # 200 MiB, if anyone read it

    sent = run(
        BodyLimit(inner, MiB), http_scope([(b"content-length", str(200 * MiB).encode())]), receive
    )

    assert not inner.called and asked[0] == 0
    assert sent[0]["status"] == 413
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b'"status": 413' in sent[1]["body"]


def test_a_streamed_body_is_counted_and_refused_once_past_the_cap() -> None:
    inner = Recorder()
    receive, asked = chunks(64 * 1024, 3200)  # chunked: no Content-Length

    sent = run(BodyLimit(inner, MiB), http_scope([]), receive)

    assert inner.called and inner.read <= MiB
    assert asked[0] == MiB // (64 * 1024) + 1  # it stopped reading at the cap
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]


def test_a_body_under_the_cap_passes() -> None:
    inner = Recorder()
    receive, _ = chunks(1024, 4)

    sent = run(BodyLimit(inner, MiB), http_scope([(b"content-length", b"4096")]), receive)

    assert inner.read == 4096 and sent[0]["status"] == 200


def test_fastapi_answers_413_not_its_own_400_or_401_to_a_streamed_body_past_the_cap() -> None:
    app = FastAPI()
    checked: list[str] = []

    def authenticated() -> None:
        checked.append("auth")

    @app.post("/v1/things", dependencies=[Depends(authenticated)])
    def create(body: dict[str, Any]) -> dict[str, Any]:
        return body

    receive, asked = chunks(256 * 1024, 100)
    sent = run(BodyLimit(app, MiB), http_scope([], "/v1/things"), receive)

    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]
    assert asked[0] <= 5 and checked == []


# -- security headers ----------------------------------------------------------------------


def get(app: Any, path: str, base_url: str = "http://testserver") -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.get(path)

    return asyncio.run(call())


def headed_app(tls: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/chart")
    def chart() -> dict[str, str]:
        return {"patient": "…"}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(SecurityHeaders, tls=tls)  # inside Starlette's error middleware, as served
    return app


def test_every_answer_carries_no_store_and_the_security_headers() -> None:
    app = headed_app()
    for answer in (get(app, "/chart"), get(app, "/nowhere"), get(app, "/boom")):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in answer.headers
    failed = get(app, "/boom")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "a bug" not in failed.text


def test_hsts_only_when_tls_is_on() -> None:
    assert "max-age=" in get(headed_app(tls=True), "/chart").headers["strict-transport-security"]
    https = get(headed_app(), "/chart", base_url="https://testserver")
    assert "strict-transport-security" in https.headers


# -- rate limits, cached checks, cursors ---------------------------------------------------


def test_a_user_past_the_search_budget_is_refused_with_a_retry_after_others_are_not() -> None:
    limits = RateLimits(ServiceSettings(rate_limit_search="3/minute"))
    for _ in range(3):
        limits.hit("search", "alice")

    with pytest.raises(RateLimited) as refused:
        limits.hit("search", "alice")
    limits.hit("search", "bob")
    limits.hit("exports", "alice")

    assert 1 <= refused.value.retry_after_s <= 60
    assert "3 per 1 minute" in str(refused.value)


def test_denials_are_recorded_up_to_a_budget_per_address() -> None:
    # a flood of refused requests from one address stops being written to the store
    limits = RateLimits(ServiceSettings(rate_limit_denials="3/minute"))
    recorded = [limits.allow("denials", "198.51.100.7") for _ in range(5)]
    assert recorded == [True, True, True, False, False]
    assert limits.allow("denials", "10.0.0.2")  # another workstation is still recorded


def test_readiness_is_computed_once_per_interval_however_often_it_is_asked() -> None:
    calls: list[int] = []

    def check() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    cached = Cached(check, ttl_s=60)

    assert [cached.get() for _ in range(50)] == [{"n": 1}] * 50
    assert len(calls) == 1


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    key = (True, datetime(2026, 3, 1, 9, tzinfo=UTC), uuid4())

    assert cursors.decode(cursors.encode(key), bool, datetime, type(key[2])) == key
    for forged in ("not-base64!", cursors.encode([1]), cursors.encode(["x", "y", "z"])):
        with pytest.raises(cursors.InvalidCursor):
            cursors.decode(forged, bool, datetime, type(key[2]))


# -- history pages -------------------------------------------------------------------------


def test_history_pages_decode_one_page_each_and_join_into_the_whole_history(
    store: ClinicalStore,
) -> None:
    patient = registered(store)
    medication = store.prescribe(ctx(), _amoxicillin(patient)).id
    for _ in range(5):
        store.record_chart_view(ctx(NURSE), RecordChartView(patient, "chart", "treatment", False))
    store.change_medication(ctx(reason="renal function"), ChangeMedication(medication, dose=250))
    whole = history_entries(store.event_log.of_patient(patient))

    pages, after = [], 0
    while True:
        page = history_page(store.event_log, patient, after, 3)
        assert len(page.entries) <= 3
        pages.append(page.entries)
        if page.next_after is None:
            break
        after = page.next_after

    assert [len(p) for p in pages] == [3, 3, 2]
    assert [e for p in pages for e in p] == whole
    changed = history_page(store.event_log, patient, event_type="medication.changed")
    assert changed.next_after is None
    assert changed.entries[0]["changes"] == {"dose": {"before": 500.0, "after": 250.0}}
