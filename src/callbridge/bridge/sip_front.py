"""The bridge's SIP endpoints (UDP, TCP on the same port, TLS on its own), each with its driver.

``SipFront`` binds them, hands every event to the bridge with the endpoint
it came from, and answers a call by its Call-ID on the endpoint that
offered it: ring, answer, reject, hang up, answer a re-INVITE. What is sent
is flushed at once (an answer must not wait for the driver's next timer).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import ssl
from collections.abc import Callable

from callbridge.bridge.sip_transport import EndpointDriver, SipTcpServer, SipUdpProtocol
from callbridge.sip.advertise import Advertised, hostport
from callbridge.sip.endpoint import EndpointConfig, Event, IncomingCall, SipEndpoint

log = logging.getLogger(__name__)

# Picks of a system-chosen port before giving up when its TCP twin is taken.
PORT_PICKS = 8

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SipFront:
    """UDP and TCP endpoints of one node, and which one each call came in on."""

    def __init__(
        self,
        host: str,
        networks: tuple[Network, ...],
        max_calls: int,
        on_event: Callable[[SipEndpoint, Event], None],
        advertised: Advertised | None = None,
    ) -> None:
        self.host = host
        # What peers outside the local networks are told our address is (behind a NAT).
        self.advertised = advertised
        self.networks = networks
        self.max_calls = max_calls
        self.on_event = on_event
        self.drivers: dict[SipEndpoint, EndpointDriver] = {}
        self._endpoint_of: dict[str, SipEndpoint] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tls: asyncio.Server | None = None
        self.tls_server: SipTcpServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def open(self, port: int, tcp: bool) -> int:
        """Bind UDP on ``port`` (0 picks one), and TCP on the same; returns the port.

        With 0 the system picks a free UDP port, which says nothing of TCP: another
        process may hold that number for TCP. Then a new UDP port is picked, rather
        than failing a start that asked for no particular port.
        """
        loop = self.loop = asyncio.get_running_loop()
        for attempt in range(PORT_PICKS if port == 0 else 1):
            udp_endpoint = self._endpoint("UDP", port)
            driver = EndpointDriver(udp_endpoint, self._on_event, loop)
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(SipUdpProtocol, driver), local_addr=(self.host, port)
            )
            bound = int(transport.get_extra_info("sockname")[1])
            if tcp:
                tcp_endpoint = self._endpoint("TCP", bound)
                tcp_driver = EndpointDriver(tcp_endpoint, self._on_event, loop)
                try:
                    self._tcp = await SipTcpServer(tcp_driver).listen(self.host, bound)
                except OSError as error:
                    transport.close()
                    if port != 0 or error.errno != errno.EADDRINUSE or attempt == PORT_PICKS - 1:
                        raise
                    continue
                self.drivers[tcp_endpoint] = tcp_driver
            break
        self._udp = transport
        port = bound
        udp_endpoint.config.port = port
        self.drivers[udp_endpoint] = driver
        log.info("SIP on %s:%d (UDP%s)", self.host, port, " and TCP" if self._tcp else "")
        if self.advertised is not None and self.advertised.any:
            sip_host, sip_port = self.advertised.sip_for("0.0.0.0", port)
            log.info(
                "advertised to peers outside %s: SIP %s, media %s",
                ", ".join(str(n) for n in self.advertised.local_networks) or "loopback",
                hostport(sip_host, sip_port),
                self.advertised.media_host or self.host,
            )
        return int(port)

    async def open_tls(self, port: int, context: ssl.SSLContext) -> int:
        """Serve SIP over TLS on ``port`` (0 picks one); returns the port."""
        loop = self.loop = asyncio.get_running_loop()
        endpoint = self._endpoint("TLS", port)
        driver = EndpointDriver(endpoint, self._on_event, loop)
        self.tls_server = SipTcpServer(driver, tls=context)
        self._tls = await self.tls_server.listen(self.host, port)
        port = self._tls.sockets[0].getsockname()[1]
        endpoint.config.port = port
        self.drivers[endpoint] = driver
        log.info("SIP over TLS on %s:%d", self.host, port)
        return int(port)

    def tls_counters(self) -> dict[str, int]:
        """TLS handshakes completed and failed (a plaintext client, a bad certificate)."""
        server = self.tls_server
        if server is None:
            return {}
        return {
            "tls_handshakes": server.handshakes,
            "tls_handshake_failed": server.handshake_failed,
            "tls_connections": len(server.connections),
        }

    def _endpoint(self, transport: str, port: int) -> SipEndpoint:
        return SipEndpoint(
            EndpointConfig(
                host=self.host,
                port=port,
                transport=transport,
                allowed_networks=self.networks,
                max_calls=self.max_calls,
                advertised=self.advertised,
            )
        )

    def _on_event(self, endpoint: SipEndpoint, event: Event) -> None:
        if isinstance(event, IncomingCall):
            self._endpoint_of[event.call_id] = endpoint
        self.on_event(endpoint, event)

    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _flushed(self, call_id: str, send: Callable[[SipEndpoint, float], None]) -> None:
        endpoint = self._endpoint_of.get(call_id)
        if endpoint is None:
            return
        send(endpoint, self._now())
        driver = self.drivers.get(endpoint)
        if driver is not None:
            driver.flush()

    def ring(self, call_id: str) -> None:
        self._flushed(call_id, lambda e, now: e.ring(call_id, now))

    def answer(self, call_id: str, sdp: bytes | None) -> None:
        if sdp is not None:
            self._flushed(call_id, lambda e, now: e.answer(call_id, sdp, now))

    def reject(self, call_id: str, status: int, reason: str | None = None) -> None:
        self._flushed(call_id, lambda e, now: e.reject(call_id, status, now, reason))
        self._endpoint_of.pop(call_id, None)

    def hangup(self, call_id: str) -> None:
        self._flushed(call_id, lambda e, now: e.hangup(call_id, now))

    def answer_reinvite(self, call_id: str, sdp: bytes) -> None:
        self._flushed(call_id, lambda e, now: e.answer_reinvite(call_id, sdp, now))

    def reject_reinvite(self, call_id: str, status: int) -> None:
        self._flushed(call_id, lambda e, now: e.reject_reinvite(call_id, status, now))

    def forget(self, call_id: str) -> None:
        """The call is over: its endpoint is not needed any more."""
        self._endpoint_of.pop(call_id, None)

    def responses(self) -> dict[int, int]:
        """Responses sent by status since start, UDP and TCP together."""
        total: dict[int, int] = {}
        for endpoint in self.drivers:
            for status, count in endpoint.stats.responses.items():
                total[status] = total.get(status, 0) + count
        return total

    @property
    def refused_foreign(self) -> int:
        return sum(endpoint.gate.refused for endpoint in self.drivers)

    async def close(self) -> None:
        for driver in self.drivers.values():
            driver.flush()
            driver.close()
        if self._udp is not None:
            self._udp.close()
        for server in (self._tcp, self._tls):
            if server is not None:
                server.close()
                await server.wait_closed()
