"""``backbone keys serve``: the key service over HTTPS with required client certificates.

``POST /v1/keys`` with ``{"topic": …, "patient_ids": [...]}`` answers
``{"topic": …, "keys": {"<patient id>": "<base64 subkey>" | null, …}, "unknown": [...]}``
(null: erased; ``unknown``: ids whose key this store never had, which is not an erasure);
``403`` when the principal (the client certificate's common name) may not read the topic,
``400`` for a request it does not understand. ``GET /healthz`` answers ``{"status": "ok"}``.
Errors are ``application/problem+json``. A connection without a certificate signed by the
CA never gets past the TLS handshake.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from events.application import ClinicalStore
from services.keyservice.grants import BadRequest, KeyGrants, Refused
from services.settings import ServiceSettings

log = logging.getLogger("backbone.keys")
MAX_BODY = 512 * 1024


def server_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS 1.2+ with the server's certificate, requiring a client certificate from the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    context.load_verify_locations(cafile=str(ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def common_name(peer: dict[str, Any] | None) -> str | None:
    """The common name of a verified peer certificate (``SSLSocket.getpeercert()``)."""
    for rdn in (peer or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


class _Handler(BaseHTTPRequestHandler):
    server: KeyServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection is closed after this long

    def setup(self) -> None:
        super().setup()
        # The handshake runs here, in the connection's own thread, not in the accept loop.
        self._tls().do_handshake()

    def _tls(self) -> ssl.SSLSocket:
        connection = self.connection
        if not isinstance(connection, ssl.SSLSocket):
            raise TypeError("the key service serves TLS connections only")
        return connection

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the request line is not logged: a JSON line per fetch is

    def _send(self, status: int, body: dict[str, Any], problem: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        kind = "application/problem+json" if problem else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _problem(self, status: int, title: str, detail: str) -> None:
        self._send(
            status,
            {"type": "about:blank", "title": title, "status": status, "detail": detail},
            problem=True,
        )

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        else:
            self._problem(404, "Not Found", "no such resource")

    def do_POST(self) -> None:
        if self.path != "/v1/keys":
            self._problem(404, "Not Found", "no such resource")
            return
        principal = common_name(self._tls().getpeercert())
        if principal is None:
            self._problem(403, "Forbidden", "the client certificate names no principal")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self.close_connection = True
            self._problem(400, "Bad Request", f"a JSON body of at most {MAX_BODY} bytes")
            return
        try:
            request = json.loads(self.rfile.read(length))
            if not isinstance(request, dict):
                raise BadRequest("the body must be a JSON object")
            answer = self.server.grants.answer(
                principal, request.get("topic"), request.get("patient_ids")
            )
        except (ValueError, BadRequest) as exc:
            self._problem(
                400,
                "Bad Request",
                str(exc) if isinstance(exc, BadRequest) else "the body is not JSON",
            )
            return
        except Refused as exc:
            self._problem(403, "Forbidden", str(exc))
            return
        self._send(
            200, {"topic": answer.topic, "keys": answer.keys, "unknown": list(answer.unknown)}
        )


class KeyServer(ThreadingHTTPServer):
    """The key service's HTTPS server (a thread per connection)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], grants: KeyGrants, context: ssl.SSLContext):
        super().__init__(address, _Handler)
        self.grants = grants
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failed handshake (no or a foreign certificate) or a dropped connection: one
        JSON line with the error's type, never a traceback on stderr."""
        del request, client_address
        error = sys.exc_info()[0]
        log.warning(
            "key service connection failed",
            extra={"fields": {"error": error.__name__ if error else "unknown"}},
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def key_server(
    store: ClinicalStore, pool: ConnectionPool, settings: ServiceSettings, port: int | None = None
) -> KeyServer:
    """The key service of ``store`` on ``settings.key_service_host`` (and its port, or
    ``port``; 0 picks a free one), with the servers' certificate and the CA of the clients."""
    grants = KeyGrants(store.payload_keys, pool, store.name, topics=settings.topic_names)
    grants.create_table()
    context = server_context(
        settings.tls_ca_file or settings.tls_dir / "ca.pem",
        settings.tls_dir / "server.pem",
        settings.tls_dir / "server.key",
    )
    address = (settings.key_service_host, settings.key_service_port if port is None else port)
    return KeyServer(address, grants, context)


def serve_in_thread(server: KeyServer) -> threading.Thread:
    """Serve until ``server.shutdown()``; the thread serving."""
    thread = threading.Thread(target=server.serve_forever, name="key-service", daemon=True)
    thread.start()
    return thread
