"""The MLLP listener: connections in, worker queues, ACKs back in the order received.

Each connection reads frames and hands every message to the dispatcher at once (a sender
may pipeline); its ACKs go back in the order the messages came. The dispatcher keeps one
queue per ``crc32(routing key) % workers``: the messages of one patient are applied one
after the other in arrival order, different patients in parallel, each queue's store calls
on a thread of the pool (the store is synchronous). When the store is unreachable the
connection is closed without an ACK: the sender resends, nothing is refused for it.

With ``BACKBONE_HL7_TLS`` the connections are TLS and a client certificate from the CA is
required; its common name is the one sender (``MSH-3|MSH-4``) the connection may speak
for. A message naming another sender is answered ``AR`` (ERR at MSH-3) and neither
applied, kept nor recorded as answered: a resend from the real sender stays its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from services.bootstrap import Backbone, schema_lock
from services.hl7.ack import build_ack
from services.hl7.contract import Refusal
from services.hl7.intake import (
    Answer,
    Inbound,
    Intake,
    Prepared,
    Translator,
    Unavailable,
    load_translator,
)
from services.hl7.ledger import Ledger
from services.hl7.mllp import FrameTooLarge, frame, read_frame
from services.hl7.settings import HL7Settings
from services.tls import peer_common_name, server_context

log = logging.getLogger(__name__)
Handle = Callable[[Prepared], Answer]
PIPELINE_DEPTH = 64  # messages read ahead of their ACKs on one connection
HANDSHAKE_TIMEOUT_S = 30.0


class Dispatcher:
    """Worker queues: one patient's messages in order, patients in parallel."""

    def __init__(self, handle: Handle, workers: int, executor: ThreadPoolExecutor) -> None:
        self.handle = handle
        self.executor = executor
        self._queues: list[asyncio.Queue[tuple[Prepared, asyncio.Future[Answer]]]] = [
            asyncio.Queue() for _ in range(workers)
        ]
        self._tasks = [asyncio.create_task(self._work(q)) for q in self._queues]

    def submit(self, prepared: Prepared) -> asyncio.Future[Answer]:
        """Queue a message behind the earlier ones of its patient; its future is the ACK."""
        loop = asyncio.get_running_loop()
        key = prepared.routing_key()
        if not key:  # unreadable: nothing to order it with
            return asyncio.wrap_future(self.executor.submit(self.handle, prepared), loop=loop)
        answer: asyncio.Future[Answer] = loop.create_future()
        queue = self._queues[zlib.crc32(key.encode()) % len(self._queues)]
        queue.put_nowait((prepared, answer))
        return answer

    async def _work(self, queue: asyncio.Queue[tuple[Prepared, asyncio.Future[Answer]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            prepared, answer = await queue.get()
            try:
                result = await loop.run_in_executor(self.executor, self.handle, prepared)
            except asyncio.CancelledError:
                _fail(answer, Unavailable("the listener is stopping"))
                raise
            except Exception as exc:
                _fail(answer, exc)
            else:
                if not answer.done():
                    answer.set_result(result)
            finally:
                queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Finish what was queued (up to the timeout), then stop the workers; what is left
        is not answered (its sender resends)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._queues:
            while not queue.empty():
                _, answer = queue.get_nowait()
                _fail(answer, Unavailable("the listener is stopping"))


def _fail(answer: asyncio.Future[Answer], exc: BaseException) -> None:
    if not answer.done():
        answer.set_exception(exc)


class Listener:
    """Accepts MLLP connections and answers each message with its ACK."""

    def __init__(self, intake: Intake, settings: HL7Settings) -> None:
        self.intake = intake
        self.settings = settings
        self.executor = ThreadPoolExecutor(settings.workers + 2, thread_name_prefix="hl7")
        self._server: asyncio.Server | None = None
        self._dispatcher: Dispatcher | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one chosen when the settings say 0)."""
        if self._server is None:
            raise RuntimeError("the listener is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._dispatcher = Dispatcher(self.intake.handle, self.settings.workers, self.executor)
        tls = tls_context(self.settings)
        self._server = await asyncio.start_server(
            self._connection,
            self.settings.host,
            self.settings.port,
            limit=self.settings.max_message_bytes,
            ssl=tls,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if tls is not None else None,
        )
        log.info(
            "hl7 listener started",
            extra={
                "fields": {"address": f"{self.settings.host}:{self.port}", "tls": tls is not None}
            },
        )

    async def run(self, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
        """Listen until ``stop`` is set, then finish the queued messages and close."""
        await self.start()
        if ready is not None:
            ready(self.port)
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._dispatcher is not None:
            await self._dispatcher.drain(self.settings.drain_timeout_s)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        log.info("hl7 listener stopped")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        answers: asyncio.Queue[asyncio.Future[Answer] | None] = asyncio.Queue(PIPELINE_DEPTH)
        replying = asyncio.create_task(self._reply(answers, writer))
        certified = peer_common_name(writer.get_extra_info("peercert"))
        try:
            if self.settings.tls and certified is None:  # CERT_REQUIRED makes this rare
                log.warning("hl7 client certificate without a common name; connection closed")
                return
            await self._read(reader, answers, certified)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await answers.put(None)
                await replying
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def _read(
        self,
        reader: asyncio.StreamReader,
        answers: asyncio.Queue[asyncio.Future[Answer] | None],
        certified: str | None = None,
    ) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None  # noqa: S101 - started before connections are accepted
        while True:
            try:
                message = await asyncio.wait_for(read_frame(reader), self.settings.idle_timeout_s)
            except TimeoutError:
                return
            except FrameTooLarge:
                log.warning(
                    "hl7 frame too large; connection closed",
                    extra={"fields": {"limit": self.settings.max_message_bytes}},
                )
                return
            except ConnectionError:
                return
            if message is None:
                return
            inbound = Inbound.of(message, self.intake.clock())
            refused = self._impostor(inbound, certified) if certified is not None else None
            if refused is not None:
                await answers.put(refused)
                continue
            await answers.put(dispatcher.submit(self.intake.prepare(inbound)))

    def _impostor(self, inbound: Inbound, certified: str) -> asyncio.Future[Answer] | None:
        """The AR of a message whose MSH-3|MSH-4 is not the sender the certificate names."""
        header = inbound.header
        if header is None or header.sender.name == certified:
            return None  # a message without a header is refused AR by the intake
        log.warning(
            "hl7 sender does not match its client certificate; answered AR",
            extra={
                "fields": {
                    "certificate": certified,
                    "sender": header.sender.name,
                    "control_id": header.control_id,
                }
            },
        )
        named = ", ".join(certified.split("|", 1))
        reason = (
            f"MSH-3 and MSH-4 ({header.sending_application}, {header.sending_facility}) are not "
            f"the sender this connection's client certificate names ({named}); not applied"
        )
        refusal = Refusal("AR", "MSH-3", reason, error_code="103")
        ack = build_ack(
            header, "AR", self.intake.clock(), refusal, application=self.intake.application
        )
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        answer.set_result(Answer(ack, "AR"))
        return answer

    async def _reply(
        self,
        answers: asyncio.Queue[asyncio.Future[Answer] | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        broken = False  # once closed, later answers are only taken off the queue
        while (pending := await answers.get()) is not None:
            if broken:
                continue
            try:
                answer = await pending
                writer.write(frame(answer.ack))
                await writer.drain()
            except Unavailable as exc:
                log.error(
                    "hl7 store unavailable; connection closed without ACK",
                    extra={"fields": {"error": str(exc)}},
                )
                broken = True
            except ConnectionError:
                broken = True
            except Exception as exc:
                log.error(
                    "hl7 message not answered; connection closed",
                    extra={"fields": {"error": type(exc).__name__}},
                )
                broken = True
            if broken:
                writer.close()


def tls_context(settings: HL7Settings) -> ssl.SSLContext | None:
    """The listener's TLS (a client certificate from the CA required), None for plain MLLP."""
    if not settings.tls:
        return None
    cert, key = settings.certificate
    return server_context(cert, key, client_ca_file=settings.ca_file)


def open_ledger(backbone: Backbone) -> Ledger:
    """The ledger of the process's store, its tables made if missing."""
    ledger = Ledger(backbone.pool, backbone.store_settings.store_name)
    with schema_lock(backbone.pool):
        ledger.create()
    return ledger


def build_intake(
    backbone: Backbone, settings: HL7Settings, translator: Translator | None = None
) -> Intake:
    """The intake of a process: the store, the ledger (its tables made), the translation."""
    store = backbone.store  # built first: it takes the schema lock itself (not re-entrant)
    return Intake(
        store,
        open_ledger(backbone),
        translator or load_translator(settings.translator),
        application=settings.application,
    )
