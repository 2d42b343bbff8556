"""Key management recorded in the store: ``keys.rotated`` and ``keys.id_key_separated``.

Both are events about no patient, on ``clinical.access``, so compliance sees them in the
same log as every other privileged action; a JSON log line says the same (no key value,
only fingerprints).
"""

from __future__ import annotations

import logging

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.domain.payloads.access import IdKeySeparated, KeysRotated
from events.store.keys import key_fingerprint
from events.store.rotation import Rotation

log = logging.getLogger("backbone.keys")


def record_rotation(store: ClinicalStore, operator: Actor, rotation: Rotation) -> CommandResult:
    """Record a finished master key rotation under the operator who ran it."""
    payload = KeysRotated(
        data_keys=rotation.rewrapped,
        erased_keys=rotation.erased,
        new_key=rotation.new_fingerprint,
        retired_key=rotation.retired_fingerprint,
        retired_file=rotation.retired_file.name,
    )
    ctx = CommandContext(actor=operator, reason="master key rotation")
    result = store.start(ctx, store.new_id(), None, lambda _: payload)
    log.info(
        "master key rotated",
        extra={
            "fields": {
                "store": store.name,
                "position": result.position,
                "data_keys": rotation.rewrapped,
                "erased_keys": rotation.erased,
                "new_key": rotation.new_fingerprint,
                "retired_key": rotation.retired_fingerprint,
            }
        },
    )
    return result


def record_id_key_separated(store: ClinicalStore, id_key: bytes) -> CommandResult:
    """Record that an existing store's id key was written to its own file (once)."""
    payload = IdKeySeparated(id_key=key_fingerprint(id_key), derived_from_master=True)
    ctx = CommandContext(actor=SYSTEM_ACTOR, reason="id key separated from the master key")
    result = store.start(ctx, store.new_id(), None, lambda _: payload)
    log.info(
        "id key separated from the master key",
        extra={
            "fields": {"store": store.name, "position": result.position, "id_key": payload.id_key}
        },
    )
    return result
