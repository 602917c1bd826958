"""Thin asyncio glue around ``sip.uac.SipClient``: one UDP socket, one timer.

Nothing here parses SIP: bytes go into the client with the loop's time,
what it wants sent is sent, its one timer re-armed, its events handed on.
Trunk host names are resolved here, once, when the trunks are loaded (the
core reads no DNS; A/AAAA only, no SRV/NAPTR yet): a name that does not
resolve leaves its trunk out, logged. UDP only for now (``bridge.trunks``
refuses a ``tcp`` trunk when the file is read).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from callbridge.bridge.sip_transport import log_failure
from callbridge.bridge.trunks import Trunk, TrunkSpec
from callbridge.sip.uac import ClientConfig, Event, SipClient

log = logging.getLogger(__name__)

Address = tuple[str, int]


async def resolve(specs: tuple[TrunkSpec, ...], loop: asyncio.AbstractEventLoop) -> list[Trunk]:
    """Each trunk with its addresses: as written, or its host name's IPv4/IPv6 addresses."""
    trunks: list[Trunk] = []
    for spec in specs:
        addresses = spec.addresses
        if not addresses and spec.host is not None:
            try:
                found = await loop.getaddrinfo(spec.host, spec.port, type=socket.SOCK_DGRAM)
            except OSError as error:
                # The server starts; the trunk is left out until the next start.
                log.error(
                    "trunk %s: %s does not resolve (%s); not used", spec.name, spec.host, error
                )
                continue
            addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
        trunks.append(Trunk(spec, addresses))
    return trunks


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, driver: SipClientDriver) -> None:
        self.driver = driver

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.driver.receive(data, (addr[0], addr[1]))
        except Exception:
            log_failure("a SIP datagram to the client", addr, self.driver.loop.time())

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP client socket error: %s", exc)


class SipClientDriver:
    """The UAC's socket: feeds ``client``, flushes it, re-arms its timer."""

    def __init__(
        self,
        host: str,
        allowed: frozenset[str],
        on_event: Callable[[Event], None],
        loop: asyncio.AbstractEventLoop,
        register_contact: Address | None = None,
    ) -> None:
        self.host = host
        self.register_contact = register_contact
        self.allowed = allowed
        self.on_event = on_event
        self.loop = loop
        self.client: SipClient | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def open(self, port: int = 0) -> int:
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, port)
        )
        self._transport = transport
        port = transport.get_extra_info("sockname")[1]
        self.client = SipClient(
            ClientConfig(
                self.host, port, allowed=self.allowed, register_contact=self.register_contact
            )
        )
        log.info("SIP client (calls placed, registrations) on %s:%d (UDP)", self.host, port)
        return int(port)

    def now(self) -> float:
        return self.loop.time()

    def receive(self, data: bytes, addr: Address) -> None:
        assert self.client is not None
        self.client.receive_datagram(data, addr, self.now())
        self.flush()

    def flush(self) -> None:
        """Send what the client produced, deliver its events, re-arm its timer."""
        client = self.client
        if client is None:
            return
        self._send(client.datagrams_to_send())
        while (event := client.next_event()) is not None:
            try:
                self.on_event(event)
            except Exception:
                log_failure(f"handling {type(event).__name__}", ("bridge", 0), self.now())
            self._send(client.datagrams_to_send())
        when = client.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self.loop.call_at(when, self._fire)

    def _send(self, out: list[tuple[bytes, Address]]) -> None:
        transport = self._transport
        for data, addr in out:
            if transport is not None and not transport.is_closing():
                transport.sendto(data, addr)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.client is not None:
            self.client.handle_timer(self.now())
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
