"""MLLP framing: a message is ``0x0B`` + its bytes + ``0x1C 0x0D``, on a plain TCP stream.

Bytes before a start block are noise and dropped (a sender's keep-alive newline, say); a
frame larger than the limit closes the connection, since where the next one starts is then
unknown. Segments inside a message are separated by CR; files and careless senders use LF
or CRLF, which ``segments_of`` turns into CR.
"""

from __future__ import annotations

import asyncio
import re

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_LINE_BREAKS = re.compile(r"\r\n|\n|\r")


class FrameTooLarge(Exception):
    """A frame longer than the listener accepts: the stream cannot be resynchronised."""


def frame(message: bytes) -> bytes:
    """The MLLP frame of one message."""
    return START_BLOCK + message + END_BLOCK


def unframe(block: bytes) -> bytes:
    """The message inside a block read up to and including the end block: what follows
    the last start block (noise before it is dropped). A block without a start block is
    returned whole, so that it is answered as unparseable instead of silently skipped."""
    body = block.removesuffix(END_BLOCK)
    start = body.rfind(START_BLOCK)
    return body[start + 1 :] if start >= 0 else body


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next message on the stream, or None at its end (a partial frame is dropped).

    The reader's own limit (``asyncio.start_server(limit=...)``) bounds the frame size;
    whitespace alone before an end block (no start block) is skipped as noise."""
    while True:
        try:
            block = await reader.readuntil(END_BLOCK)
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            raise FrameTooLarge(f"a frame longer than {exc.consumed} bytes") from None
        if START_BLOCK in block or block.removesuffix(END_BLOCK).strip():
            return unframe(block)


def segments_of(text: str) -> str:
    """The message with every line break (CR, LF or CRLF) as the segment separator CR,
    blank lines and surrounding whitespace dropped."""
    lines = (line for line in _LINE_BREAKS.split(text.strip()) if line.strip())
    return "\r".join(lines)


def decode(message: bytes) -> str:
    """A message's text: UTF-8, or ISO 8859-1 (which decodes any byte) when it is not."""
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")
