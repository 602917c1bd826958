"""Thin asyncio glue around ``SipEndpoint``: UDP and TCP sockets, one timer.

Nothing here parses SIP. Bytes go into the endpoint with the loop's time;
what the endpoint wants sent is sent; its one timer is re-armed after every
call; its events go to the bridge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from callbridge.sip.endpoint import Event, SipEndpoint
from callbridge.sip.errors import SipError
from callbridge.sip.message import StreamFramer

log = logging.getLogger(__name__)

Address = tuple[str, int]
EventSink = Callable[[SipEndpoint, Event], None]


class EndpointDriver:
    """Feeds one endpoint and flushes its output; shared by the UDP and TCP glue."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        on_event: EventSink,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.loop = loop
        self.send: Callable[[bytes, Address], None] = lambda data, addr: None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def receive(self, data: bytes, addr: Address) -> None:
        self.endpoint.receive_datagram(data, addr, self.loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the endpoint produced, deliver its events, re-arm its timer."""
        for data, addr in self.endpoint.datagrams_to_send():
            self.send(data, addr)
        while (event := self.endpoint.next_event()) is not None:
            try:
                self.on_event(self.endpoint, event)
            except Exception:
                log.exception("handling %s failed", type(event).__name__)
            # Handling an event may queue responses (an answer, a BYE).
            for data, addr in self.endpoint.datagrams_to_send():
                self.send(data, addr)
        self._arm()

    def _arm(self) -> None:
        when = self.endpoint.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self.loop.time())
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class SipUdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, driver: EndpointDriver) -> None:
        self.driver = driver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.driver.send = self._send

    def _send(self, data: bytes, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.driver.receive(data, (addr[0], addr[1]))
        except Exception:
            # The endpoint catches protocol errors; this is a bug, and the server goes on.
            log.exception("SIP datagram from %s crashed the endpoint", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP socket error: %s", exc)


class SipTcpServer:
    """SIP over TCP: one framer per connection, responses back on the same connection."""

    MAX_CONNECTIONS = 1000

    def __init__(self, driver: EndpointDriver) -> None:
        self.driver = driver
        self.connections: dict[Address, asyncio.StreamWriter] = {}
        driver.send = self._send

    def _send(self, data: bytes, addr: Address) -> None:
        writer = self.connections.get(addr)
        if writer is None or writer.is_closing():
            log.debug("no TCP connection to %s for a SIP message", addr)
            return
        writer.write(data)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr: Address = (peer[0], peer[1])
        if len(self.connections) >= self.MAX_CONNECTIONS:
            writer.close()
            return
        self.connections[addr] = writer
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                try:
                    messages = framer.feed(data)
                except SipError as error:
                    log.info("closing SIP TCP connection from %s: %s", addr, error)
                    break
                for message in messages:
                    try:
                        self.driver.receive(message, addr)
                    except Exception:
                        log.exception("SIP message from %s crashed the endpoint", addr)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.pop(addr, None)
            writer.close()
