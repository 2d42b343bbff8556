"""A resource's history from the store: its versions are the events that changed it.

The patient's events (and those of every record merged with it) are replayed in store
order with the projections' own handlers into a scratch schema (``projections.engine
.scratch``); after each event the resource is read there with its kind's SQL, and each
event after which it reads differently is a version: version 1 the event that created it,
then one per change. Each version carries a Provenance from the event's envelope: who
(user and role, and for whom), why (the reason), when it was recorded and its clinical
time, and what kind of change it was."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from events.application import ClinicalStore
from events.store.log import LoggedEvent
from events.store.published import PublishedEnvelope
from projections.chart import CHART_PROJECTIONS
from projections.engine.applying import Decoded
from projections.engine.as_of import related_events
from projections.engine.scratch import replay
from projections.registry import named
from services.fhir import search
from services.fhir.kinds import Kind
from services.fhir.resources.coding import coding, instant, without_none

# The projections whose tables the served kinds read.
FHIR_PROJECTIONS = (*CHART_PROJECTIONS, "vital_signs")
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
USER_SYSTEM = "urn:backbone:user"
EVENT_SYSTEM = "urn:backbone:event"


@dataclass(frozen=True)
class Version:
    """One version of a resource: its number (from 1), what it read as (None: it was
    removed by this event) and the event that made it so."""

    number: int
    resource: dict[str, Any] | None
    envelope: PublishedEnvelope

    @property
    def recorded_at(self) -> datetime:
        return self.envelope.recorded_at


def _content(resource: Mapping[str, Any] | None) -> Any:
    """What a version is compared on: everything but ``meta``."""
    if resource is None:
        return None
    return {k: v for k, v in resource.items() if k != "meta"}


def versions(
    conn: Connection[Any], store: ClinicalStore, kind: Kind, resource_id: UUID, patient_id: UUID
) -> list[Version]:
    """Every version of ``kind/resource_id`` in ``patient_id``'s record, oldest first."""
    id_is = search.parse(kind, [("_id", str(resource_id))]).conditions
    found: list[Version] = []
    last: list[Any] = [None]

    def read_after(_: LoggedEvent, event: Decoded) -> None:
        now = search.fetch(conn, kind, id_is, None, limit=1)
        resource = now[0] if now else None
        content = _content(resource)
        if content == last[0] or (resource is None and not found):
            return
        last[0] = content
        found.append(
            Version(len(found) + 1, _versioned(resource, len(found) + 1, event), event.envelope)
        )

    replay(
        conn,
        [named(name) for name in FHIR_PROJECTIONS],
        related_events(store, patient_id),
        after_each=read_after,
    )
    return found


def _versioned(
    resource: dict[str, Any] | None, number: int, event: Decoded
) -> dict[str, Any] | None:
    if resource is None:
        return None
    meta = {**resource.get("meta", {}), "versionId": str(number)}
    meta["lastUpdated"] = instant(event.envelope.recorded_at)
    return {**resource, "meta": meta}


def _operation(version: Version) -> dict[str, Any]:
    if version.resource is None:
        code, display = "DELETE", "delete"
    elif version.number == 1:
        code, display = "CREATE", "create"
    else:
        code, display = "UPDATE", "revise"
    return {"coding": [coding(DATA_OPERATION, code, display)]}


def provenance(kind: Kind, resource_id: UUID, version: Version) -> dict[str, Any]:
    """Who made ``version`` of the resource, in which role, for whom, why and when."""
    envelope = version.envelope
    actor = envelope.actor
    who = {
        "identifier": {"system": USER_SYSTEM, "value": str(actor.user_id)},
        "display": f"{actor.role} {actor.user_id}" if actor.role != "system" else "system",
    }
    agent: dict[str, Any] = {
        "type": {"coding": [coding(PARTICIPANT_TYPE, "author", "Author")]},
        "role": [{"text": actor.role}],
        "who": who,
    }
    if actor.on_behalf_of is not None:
        agent["onBehalfOf"] = {
            "identifier": {"system": USER_SYSTEM, "value": str(actor.on_behalf_of)}
        }
    target = f"{kind.name}/{resource_id}/_history/{version.number}"
    return without_none(
        {
            "resourceType": "Provenance",
            "id": str(envelope.event_id),
            "target": [{"reference": target}],
            "occurredDateTime": instant(envelope.occurred_at) if envelope.occurred_at else None,
            "recorded": instant(envelope.recorded_at),
            "reason": [{"text": envelope.reason}] if envelope.reason else None,
            "activity": {
                **_operation(version),
                "text": envelope.event_type,
            },
            "agent": [agent],
            "entity": [
                {
                    "role": "source",
                    "what": {
                        "identifier": {
                            "system": EVENT_SYSTEM,
                            "value": str(envelope.event_id),
                        },
                        "display": f"{envelope.event_type} at store position {envelope.position}",
                    },
                }
            ],
        }
    )


def history_bundle(
    base: str, kind: Kind, resource_id: UUID, found: list[Version]
) -> dict[str, Any]:
    """A ``history`` Bundle, newest version first, each followed by its Provenance."""
    url = f"{base}/{kind.name}/{resource_id}"
    entries: list[dict[str, Any]] = []
    for version in reversed(found):
        modified = instant(version.recorded_at)
        entry: dict[str, Any] = {"fullUrl": url}
        if version.resource is None:
            entry["request"] = {"method": "DELETE", "url": f"{kind.name}/{resource_id}"}
            entry["response"] = {"status": "204", "lastModified": modified}
        else:
            method = "POST" if version.number == 1 else "PUT"
            entry["resource"] = version.resource
            entry["request"] = {
                "method": method,
                "url": kind.name if method == "POST" else f"{kind.name}/{resource_id}",
            }
            entry["response"] = {
                "status": "201" if method == "POST" else "200",
                "etag": f'W/"{version.number}"',
                "lastModified": modified,
            }
        proof = provenance(kind, resource_id, version)
        entries.append(entry)
        entries.append(
            {
                "fullUrl": f"{base}/Provenance/{proof['id']}",
                "resource": proof,
                "request": {"method": "POST", "url": "Provenance"},
                "response": {"status": "201", "lastModified": modified},
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(found),
        "link": [{"relation": "self", "url": f"{url}/_history"}],
        "entry": entries,
    }
