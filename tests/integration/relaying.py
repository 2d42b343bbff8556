"""Relays and their status for one test store, built by the composition root."""

from __future__ import annotations

from events.settings import StoreSettings
from services.bootstrap import Backbone
from services.relay.checkpoint import RelayStatus
from services.relay.relay import Relay
from services.settings import ServiceSettings


def build_relay(settings: ServiceSettings, store_settings: StoreSettings) -> Relay:
    return Backbone(settings, store_settings).relay()


def relay_status(
    settings: ServiceSettings, store_settings: StoreSettings
) -> tuple[RelayStatus, int]:
    backbone = Backbone(settings, store_settings)
    try:
        return backbone.status.relay()
    finally:
        backbone.close()
