"""Reading FHIR input: a Bundle (transaction, batch, collection) or NDJSON, as resources.

What is not FHIR is refused with ``NotFhir`` saying where and why, before anything is
written: a file that is not JSON, a JSON value that is not a resource, a Bundle of another
type, an entry without a resource.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

BUNDLE_TYPES = frozenset({"transaction", "batch", "collection"})
Resource = dict[str, Any]


class NotFhir(ValueError):
    """Input that is not a FHIR Bundle or NDJSON of resources."""


@dataclass(frozen=True)
class Entry:
    """One resource of the input, where it was, and the names it goes by."""

    index: int
    resource: Resource
    full_url: str | None = None
    method: str | None = None

    @property
    def resource_type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def identity(self) -> str:
        """The resource's id, else its fullUrl, else its position in the input."""
        rid = self.resource.get("id")
        if isinstance(rid, str) and rid:
            return rid
        return self.full_url or f"entry-{self.index}"

    def names(self) -> tuple[str, ...]:
        """The references that may point at it: its fullUrl and ``Type/id``."""
        found = [self.full_url] if self.full_url else []
        rid = self.resource.get("id")
        if isinstance(rid, str) and rid:
            found.append(f"{self.resource_type}/{rid}")
        return tuple(found)


@dataclass(frozen=True)
class Source:
    """What was read: the entries, the Bundle type (None for NDJSON), and the source tag
    that, with each resource's identity, makes the idempotency keys of its commands."""

    entries: tuple[Entry, ...]
    bundle_type: str | None
    tag: str


def _resource(value: object, where: str) -> Resource:
    if not isinstance(value, dict):
        raise NotFhir(f"{where}: expected a FHIR resource (a JSON object)")
    kind = value.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise NotFhir(f"{where}: a FHIR resource needs a resourceType")
    return value


def _tag(bundle: Resource) -> str:
    """The Bundle's own name: ``meta.source``, else its identifier; ``-`` when it has none
    (every resource then goes by its own id or fullUrl alone)."""
    meta = bundle.get("meta")
    named = meta.get("source") if isinstance(meta, dict) else None
    ident = bundle.get("identifier")
    if not named and isinstance(ident, dict) and ident.get("value"):
        named = f"{ident.get('system', '')}|{ident['value']}"
    if not isinstance(named, str) or not named:
        return "-"
    # Keys stay short whatever the source: a long one is named by its digest.
    return named if len(named) <= 40 else hashlib.sha256(named.encode()).hexdigest()[:32]


def read_bundle(bundle: Resource) -> Source:
    """The entries of a transaction, batch or collection Bundle."""
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        raise NotFhir(f"Bundle.type {kind!r} is not one of {', '.join(sorted(BUNDLE_TYPES))}")
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise NotFhir("Bundle.entry must be a list")
    entries = []
    for index, item in enumerate(raw):
        where = f"Bundle.entry[{index}]"
        if not isinstance(item, dict) or "resource" not in item:
            raise NotFhir(f"{where}: an entry needs a resource")
        request = item.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        full_url = item.get("fullUrl")
        entries.append(
            Entry(
                index,
                _resource(item["resource"], f"{where}.resource"),
                full_url if isinstance(full_url, str) and full_url else None,
                method if isinstance(method, str) else None,
            )
        )
    return Source(tuple(entries), str(kind), _tag(bundle))


def read_text(text: str) -> Source:
    """A Bundle (one JSON document) or NDJSON (one resource a line)."""
    stripped = text.strip()
    if not stripped:
        raise NotFhir("the input is empty")
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
        if "\n" not in stripped:
            raise NotFhir("the input is neither JSON nor NDJSON") from None
    if whole is not None:
        resource = _resource(whole, "the document")
        if resource["resourceType"] == "Bundle":
            return read_bundle(resource)
        return Source((Entry(0, resource),), None, "-")
    entries: list[Entry] = []
    for number, line in enumerate(stripped.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NotFhir(f"line {number}: not JSON ({exc.msg})") from None
        resource = _resource(value, f"line {number}")
        if resource["resourceType"] == "Bundle":
            raise NotFhir(f"line {number}: NDJSON holds resources, not Bundles")
        entries.append(Entry(len(entries), resource))
    return Source(tuple(entries), None, "-")


def read_bytes(data: bytes) -> Source:
    """``read_text`` of UTF-8 input."""
    try:
        return read_text(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotFhir("the input is not UTF-8 text") from None
