"""Bundles the endpoint answers with: a search's page (``searchset``) and its links."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode


def full_url(base: str, resource: dict[str, Any]) -> str:
    """The absolute URL of ``resource`` on this server (``base`` ends with ``/fhir/R4``)."""
    return f"{base}/{resource['resourceType']}/{resource['id']}"


def page_url(base: str, path: str, query: Iterable[tuple[str, str]]) -> str:
    items = list(query)
    return f"{base}/{path}" + (f"?{urlencode(items)}" if items else "")


def searchset(
    base: str,
    resources: Sequence[dict[str, Any]],
    self_url: str,
    next_url: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``resources`` (matches), with ``self`` and ``next`` links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {"fullUrl": full_url(base, r), "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
    if total is not None:
        bundle["total"] = total
    return bundle
