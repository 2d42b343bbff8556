"""Plain ASGI middleware that guards every request: a body cap and the security headers.

Both are plain ASGI (no ``BaseHTTPMiddleware``): they see each message as it passes, so a
body is refused while it is still arriving, never after it has been buffered.

``BodyLimit`` answers 413 problem+json before the application runs when ``Content-Length``
is above the cap, and counts the bytes of a body that arrives without one (chunked): past
the cap the application's read fails, whatever it answers to that is dropped, and the
client gets the 413 with ``Connection: close`` — authentication never runs on a body it
would have had to read first. Starlette's own ``RequestBodyLimitMiddleware`` checks only
when the application reads, and answers in plain text.

``SecurityHeaders`` adds ``Cache-Control: no-store`` (answers carry patient data),
``X-Content-Type-Options``, a ``Content-Security-Policy`` with ``frame-ancestors 'none'``
(and ``X-Frame-Options`` for older browsers), ``Referrer-Policy``, and
``Strict-Transport-Security`` when the API is served over TLS, to every answer — problems
and the 500 of an unexpected error included.
"""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM = b"application/problem+json"
BASE = "https://clinical-backbone.dev/problems/"
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc load their scripts and styles from a CDN and start with inline code.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
HSTS = b"max-age=63072000; includeSubDomains"


def problem_message(
    status: int, title: str, detail: str, kind: str, close: bool = False
) -> tuple[Message, Message]:
    """The two ASGI messages of a problem+json answer (``close``: and of the connection)."""
    body = json.dumps(
        {"type": BASE + kind, "title": title, "status": status, "detail": detail}
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM),
            (b"content-length", str(len(body)).encode()),
            *([(b"connection", b"close")] if close else []),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class _BodyTooLarge(Exception):
    """Raised into the application when a streamed body passes the cap."""


class BodyLimit:
    """Refuses request bodies above ``max_bytes`` with 413, by header or by counting."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the application's answer to a read we made fail
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # raised by our receive, answered below
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        start, body = problem_message(
            413,
            "Content too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            "too-large",
            close=True,
        )
        await send(start)
        await send(body)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class SecurityHeaders:
    """Adds no-store caching and the browser security headers to every HTTP answer."""

    def __init__(self, app: ASGIApp, tls: bool = False) -> None:
        self.app = app
        self.tls = tls

    def headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        path: str = scope.get("path", "")
        policy = DOCS_POLICY if path.startswith(DOCS_PATHS) else API_POLICY
        headers = [
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", policy.encode()),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if self.tls or scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", HSTS))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", ())}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        *((n, v) for n, v in extra if n not in present),
                    ],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:
                raise
            # The error's own log line comes from the server; the answer says nothing of it.
            start, body = problem_message(
                500, "Internal error", "the server could not answer this request", "internal"
            )
            await send_with_headers(start)
            await send_with_headers(body)
            raise
