"""The read API over the event log: the only way code outside the store reads stored events.

``EventLog`` pages the store's notification log in global order, reads each event's clear
header, skips what the caller does not want before paying for decryption, fetches the data
keys of a page in one round trip and decrypts the rest. An erased patient's events come back
with their header and no event (``erased``); an event that cannot be decoded at all (altered
ciphertext, unknown format) raises ``LogUnreadable`` naming its position, never its content.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import ApplicationRecorder, Notification
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.domain.contract import spec_of
from events.domain.envelope import ClinicalEvent
from events.store.mapper import ClinicalMapper, ErasedEventError, EventHeader, header_of
from events.store.recorders import ClinicalMemoryRecorder, ClinicalPostgresRecorder

PAGE = 1000
HeaderFilter = Callable[[EventHeader], bool]
# The database out of reach while keys load: nothing was read, so nothing is unreadable.
UNREACHABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)


class LogUnreadable(Exception):
    """A stored event cannot be decoded: a person has to look at it."""

    def __init__(self, position: int, cause: Exception, where: str | None = None) -> None:
        # The type only: messages of validation errors can quote clinical values.
        at = where or f"at position {position}"
        super().__init__(f"event {at} cannot be decoded: {type(cause).__name__}")
        self.position = position


@dataclass(frozen=True)
class LoggedEvent:
    """One stored event as readers see it: where it is, its clear header, and the decrypted
    event (None once the patient is erased)."""

    position: int
    stream_id: UUID
    stream_version: int
    header: EventHeader
    event: ClinicalEvent | None
    stored_bytes: int

    @property
    def erased(self) -> bool:
        return self.event is None

    @property
    def event_type(self) -> str:
        return self.header.event_type

    @property
    def patient_id(self) -> UUID | None:
        return self.header.patient_id

    @property
    def topic(self) -> str:
        """The Kafka topic its event type travels on."""
        return spec_of(self.header.event_type).topic.name

    @property
    def partition_key(self) -> str:
        """The Kafka key: the patient id, or the stream id for non-patient events."""
        return str(self.header.patient_id or self.stream_id)


@dataclass(frozen=True)
class LogPage:
    """The events of one page that the reader wanted, and how far the page read."""

    events: list[LoggedEvent]
    last_position: int
    read: int


@dataclass(frozen=True)
class PatientPage:
    """One page of a patient's events that the reader wanted, and where the next page starts
    (None once the patient's log is read to its end)."""

    events: list[LoggedEvent]
    next_after: int | None
    scanned: int


class EventLog:
    """Reads the store's log in global order, per patient, or at one position."""

    def __init__(
        self, recorder: ClinicalPostgresRecorder | ClinicalMemoryRecorder, mapper: ClinicalMapper
    ) -> None:
        self._recorder: ApplicationRecorder = recorder
        self._clinical = recorder
        self._mapper = mapper

    def head(self) -> int:
        """The newest position (0 while the store is empty)."""
        return self._recorder.max_notification_id() or 0

    def after(
        self,
        position: int,
        limit: int = PAGE,
        types: Collection[str] | None = None,
        until: int | None = None,
        where: HeaderFilter | None = None,
        fresh_keys: bool = False,
    ) -> LogPage:
        """One page of events after ``position`` (up to ``until``), of the event ``types``
        and matching ``where`` on their clear header; ``fresh_keys`` reloads every data key
        first, so an erasure made in another process is honoured at once."""
        notifications = self._recorder.select_notifications(
            start=position, limit=limit, stop=until, inclusive_of_start=False
        )
        if not notifications:
            return LogPage([], position, 0)
        chosen = self._choose(notifications, types, where)
        return LogPage(self._decode(chosen, fresh_keys), notifications[-1].id, len(notifications))

    def pages(
        self,
        position: int = 0,
        types: Collection[str] | None = None,
        until: int | None = None,
        where: HeaderFilter | None = None,
        page_size: int = PAGE,
    ) -> Iterator[LogPage]:
        """Every page after ``position`` up to ``until`` (default: what is there now)."""
        while True:
            page = self.after(position, page_size, types, until, where)
            if not page.read:
                return
            yield page
            position = page.last_position

    def headers(self, position: int = 0, page_size: int = PAGE) -> Iterator[list[EventHeader]]:
        """The clear headers of every event after ``position``, page by page, undecrypted:
        enough to know what happened to whom and when, never what."""
        while notifications := self._recorder.select_notifications(
            start=position, limit=page_size, inclusive_of_start=False
        ):
            yield [self._header(n) for n in notifications]
            position = notifications[-1].id

    def of_patient(self, patient_id: UUID) -> list[LoggedEvent]:
        """Every event of one patient, in store order (from the patient index)."""
        return self._decode(self._clinical.patient_notifications(patient_id), False)

    def of_patient_after(
        self,
        patient_id: UUID,
        after: int = 0,
        limit: int = 100,
        where: HeaderFilter | None = None,
        scan_limit: int = 10 * PAGE,
    ) -> PatientPage:
        """Up to ``limit`` of one patient's events after ``after`` that match ``where`` on
        their clear header. Only those are decrypted; at most ``scan_limit`` headers are
        read, so a page is bounded work whatever the filter (a page cut short by the scan
        says where to go on)."""
        chosen: list[Notification] = []
        position, scanned, exhausted = after, 0, False
        while len(chosen) < limit and scanned < scan_limit:
            batch = self._clinical.patient_notifications(
                patient_id, position, min(max(2 * limit, 100), scan_limit - scanned)
            )
            if not batch:
                exhausted = True
                break
            for notification in batch:
                scanned += 1
                position = notification.id
                if where is None or where(self._header(notification)):
                    chosen.append(notification)
                    if len(chosen) == limit:
                        break
        if not exhausted:
            exhausted = not self._clinical.patient_notifications(patient_id, position, 1)
        return PatientPage(self._decode(chosen, False), None if exhausted else position, scanned)

    def stream_before(self, stream_id: UUID, version: int) -> list[ClinicalEvent]:
        """The events of one stream before ``version``, oldest first; an erased one ends the
        list (what follows it cannot be folded)."""
        events: list[ClinicalEvent] = []
        for stored in self._recorder.select_events(stream_id, lte=version - 1):
            try:
                events.append(self._mapper.to_domain_event(stored))
            except ErasedEventError:
                break
            except Exception as exc:
                where = f"{stored.originator_version} of stream {stream_id}"
                raise LogUnreadable(0, exc, where) from exc
        return events

    def stream_of(self, position: int) -> tuple[str, str] | None:
        """(topic, partition key) of the event at ``position``, or None if there is none."""
        found = self._recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return None
        header = self._mapper.decode_header(found[0])
        return spec_of(header.event_type).topic.name, str(
            header.patient_id or found[0].originator_id
        )

    def _choose(
        self,
        notifications: Sequence[Notification],
        types: Collection[str] | None,
        where: HeaderFilter | None,
    ) -> list[Notification]:
        if types is None and where is None:
            return list(notifications)
        chosen = []
        for notification in notifications:
            if types is not None and notification.topic not in types:
                continue
            if where is not None and not where(self._header(notification)):
                continue
            chosen.append(notification)
        return chosen

    def _header(self, notification: Notification) -> EventHeader:
        try:
            return self._mapper.decode_header(notification)
        except Exception as exc:
            raise LogUnreadable(notification.id, exc) from exc

    def _decode(self, notifications: Sequence[Notification], fresh_keys: bool) -> list[LoggedEvent]:
        if not notifications:
            return []
        keyring = self._mapper.keyring
        try:
            key_ids = {self._mapper.key_id_of(n) for n in notifications}
            if fresh_keys:
                keyring.refresh()
            keyring.prefetch(key_ids)
        except UNREACHABLE:
            raise
        except Exception as exc:
            raise LogUnreadable(notifications[0].id, exc) from exc
        return [self._logged(n) for n in notifications]

    def _logged(self, notification: Notification) -> LoggedEvent:
        event: ClinicalEvent | None
        try:
            event = self._mapper.to_domain_event(notification)
        except ErasedEventError as erased:
            header, event = erased.header, None
        except UNREACHABLE:
            raise
        except Exception as exc:
            raise LogUnreadable(notification.id, exc) from exc
        else:
            header = header_of(event)
        return LoggedEvent(
            position=notification.id,
            stream_id=UUID(str(notification.originator_id)),
            stream_version=notification.originator_version,
            header=header,
            event=event,
            stored_bytes=len(notification.state),
        )


def head_of(pool: ConnectionPool, store_name: str) -> int:
    """The newest position of the store named ``store_name``, read through any pool on its
    database without building the store (0 while it is empty or not created yet): status
    readers use it, so that they never run the store's DDL."""
    table = f"{store_name}_events"
    with pool.connection() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if not exists or exists[0] is None:
            return 0
        query = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}")
        row = conn.execute(query.format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0
