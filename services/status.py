"""One place for how far everything is: the store's head, the relays, projections and lag.

``/readyz``, ``/metrics``, the audit routes' wait, ``backbone status``, ``backbone relay
--status``, ``backbone project --status`` and the bench read their figures here, through the
process's pools and one long-lived Kafka admin client.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from events.settings import StoreSettings
from events.store.log import head_of
from projections.engine.base import Projection
from projections.engine.offsets import TopicEnds
from projections.engine.service import ProjectionStatus, consumer_lag, projection_statuses
from services.hl7.settings import HL7Settings, get_hl7_settings
from services.local_stack.processes import api_healthy
from services.relay.checkpoint import RelayStatus, read_status
from services.relay.leadership import RelayInstance, relay_instances
from services.settings import ServiceSettings
from services.tls import CertificatesMissing, api_client_context


def relay_name(settings: ServiceSettings, store_settings: StoreSettings) -> str:
    """The relay's checkpoint name: one relay per store."""
    return f"{settings.relay_name}:{store_settings.store_name}"


@dataclass(frozen=True)
class ListenerStatus:
    """A server's address (the HL7 listener, the API) and whether it answers."""

    address: str
    up: bool
    detail: str


def hl7_listener_status(settings: HL7Settings, timeout_s: float = 1.0) -> ListenerStatus:
    """Whether the MLLP listener accepts a TCP connection on its address."""
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return ListenerStatus(settings.address, False, f"not accepting: {exc.strerror or exc}")
    return ListenerStatus(
        settings.address, True, "accepting MLLP over TLS" if settings.tls else "accepting MLLP"
    )


def api_status(settings: ServiceSettings) -> ListenerStatus:
    """Whether the API answers ``/healthz`` at its URL, its certificate verified by the CA."""
    try:
        verify = api_client_context(settings)
    except CertificatesMissing as exc:
        return ListenerStatus(settings.api_url, False, str(exc.code))
    if api_healthy(settings.api_url, verify):
        return ListenerStatus(settings.api_url, True, "answering /healthz")
    return ListenerStatus(settings.api_url, False, "no answer to /healthz (or TLS refused)")


class StatusService:
    """Reads positions and lag; never creates a table, never opens a client per call."""

    def __init__(
        self,
        pool: ConnectionPool,
        reads: ConnectionPool,
        ends: TopicEnds,
        settings: ServiceSettings,
        store_settings: StoreSettings,
    ) -> None:
        self.pool = pool
        self.reads = reads
        self.ends = ends
        self.settings = settings
        self.store_settings = store_settings

    def head(self) -> int:
        """The store's newest position."""
        return head_of(self.pool, self.store_settings.store_name)

    def relay_state(self) -> RelayStatus:
        """The relay's recorded status alone (for waits that already know the head)."""
        return read_status(self.pool, relay_name(self.settings, self.store_settings))

    def relay_instances(self) -> list[RelayInstance]:
        """Each relay process of this store as its row says (active, standby, …)."""
        return relay_instances(self.pool, relay_name(self.settings, self.store_settings))

    def relay(self) -> tuple[RelayStatus, int]:
        """The relay's recorded status and the store's head (their difference is the lag)."""
        return self.relay_state(), self.head()

    def consumer_lag(self, projections: tuple[Projection, ...]) -> dict[str, int]:
        """Messages each projection has still to consume."""
        return consumer_lag(self.reads, self.ends, projections)

    def projections(self, projections: tuple[Projection, ...]) -> list[ProjectionStatus]:
        """Each projection's position and totals."""
        return projection_statuses(self.reads, projections)

    def api(self) -> ListenerStatus:
        """The API's URL and health (``backbone status``)."""
        return api_status(self.settings)

    def hl7(self, settings: HL7Settings | None = None) -> ListenerStatus:
        """The HL7 listener's address and health (``backbone status``)."""
        return hl7_listener_status(settings or get_hl7_settings())
