"""The API as `backbone serve` runs it: HTTPS only, its certificate verified by the local CA."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, running_backbone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("tls"), settings, 3600) as running:
        yield running


def test_a_client_verifying_against_the_ca_gets_its_answer_with_hsts(backbone: Backbone) -> None:
    assert backbone.url.startswith("https://")

    answer = backbone.client().get("/healthz")

    assert answer.status_code == 200, answer.text
    assert "max-age=" in answer.headers["strict-transport-security"]


def test_a_plain_http_request_to_the_api_port_gets_no_http_answer(backbone: Backbone) -> None:
    address = urlsplit(backbone.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk

    assert not received.startswith(b"HTTP/"), received[:200]
    plain = backbone.url.replace("https://", "http://", 1)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/healthz", timeout=10)


def test_an_https_client_without_the_ca_fails_verification(backbone: Backbone) -> None:
    # The public roots (certifi's, the system's): the local CA is in neither.
    for verify in (True, ssl.create_default_context()):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{backbone.url}/healthz", timeout=10, verify=verify)
