"""Keyset cursors for list answers: where the next page starts, opaque to clients.

A cursor is the sort key of the last row of a page (base64url of a JSON array), so the next
page is a ``WHERE (key) > (cursor)`` on an index instead of an ``OFFSET`` that reads and
drops every earlier row. It carries no authority: the route's own filters still apply to
every row it answers. A list answer with more rows says where they start in a ``Link``
header (``rel="next"``) and in ``X-Next-Cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Request, Response

T = TypeVar("T")


class InvalidCursor(ValueError):
    """A cursor this API did not make (or made for another list)."""


def encode(key: Sequence[Any]) -> str:
    """The cursor of a row's sort key (times, ids, booleans, numbers)."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    text = json.dumps([str(v) if isinstance(v, UUID) else v for v in plain])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, *types: type[Any]) -> tuple[Any, ...]:
    """The sort key of a cursor, each part read by its type (``datetime``, ``UUID``, …)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise InvalidCursor("this cursor does not belong to this list")
        return tuple(_read(kind, value) for kind, value in zip(types, raw, strict=True))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise InvalidCursor("this cursor does not belong to this list") from exc
    except ValueError as exc:
        raise InvalidCursor("this cursor does not belong to this list") from exc


def _read(kind: type[Any], value: Any) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise InvalidCursor("this cursor does not belong to this list")
        found = datetime.fromisoformat(value)
        if found.tzinfo is None:
            raise InvalidCursor("this cursor does not belong to this list")
        return found
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidCursor("this cursor does not belong to this list")
        return value
    return kind(value)


def link_next(
    request: Request,
    response: Response,
    rows: Sequence[T],
    limit: int,
    key: Callable[[T], Sequence[Any]],
) -> None:
    """When the page is full, say where the next one starts (``Link`` and ``X-Next-Cursor``)."""
    if len(rows) < limit or not rows:
        return
    cursor = encode(key(rows[-1]))
    url = request.url.include_query_params(cursor=cursor)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    response.headers["X-Next-Cursor"] = cursor
