"""A small MLLP client: send one message, read its ACK (``backbone hl7 send``, tests)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from services.hl7.ack import ReadAck, read_ack
from services.hl7.mllp import END_BLOCK, START_BLOCK, decode, frame, segments_of


class SendFailed(Exception):
    """The message could not be sent or no ACK came back; the message says why."""


def message_of_file(path: Path) -> bytes:
    """A message file's text with its segments separated by CR (the file may use CR, LF
    or CRLF), as UTF-8."""
    return segments_of(decode(path.read_bytes())).encode("utf-8")


def send(
    message: bytes,
    host: str,
    port: int,
    timeout_s: float = 30.0,
    tls: ssl.SSLContext | None = None,
) -> bytes:
    """Send one message over MLLP (inside TLS with ``tls``: the listener verified, the
    context's client certificate presented) and answer the ACK's bytes (unframed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            sock = raw if tls is None else tls.wrap_socket(raw, server_hostname=host)
            with sock:
                sock.sendall(frame(message))
                return _read_block(sock)
    except TimeoutError as exc:
        raise SendFailed(f"no ACK from {host}:{port} within {timeout_s:g} s") from exc
    except ssl.SSLError as exc:
        # TLS 1.3 reports a refused client certificate on the first read, not in connect.
        raise SendFailed(f"TLS with the HL7 listener at {host}:{port} failed: {exc}") from exc
    except OSError as exc:
        raise SendFailed(f"cannot reach the HL7 listener at {host}:{port}: {exc}") from exc


def _read_block(sock: socket.socket) -> bytes:
    received = b""
    while END_BLOCK not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise SendFailed("the listener closed the connection without an ACK")
        received += chunk
    block = received[: received.index(END_BLOCK)]
    start = block.find(START_BLOCK)
    return block[start + 1 :] if start >= 0 else block


def read(ack: bytes) -> ReadAck:
    """MSA-1, MSA-2 and the reason of an ACK, or SendFailed if it is not an ACK."""
    answer = read_ack(ack.decode("utf-8", "replace"))
    if answer is None:
        raise SendFailed("the answer is not an HL7 ACK")
    return answer
