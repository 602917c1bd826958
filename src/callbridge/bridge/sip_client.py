"""Thin asyncio glue around ``sip.uac.SipClient``: a UDP socket, TCP on its port, one timer.

Nothing here parses SIP: bytes go into the client with the loop's time,
what it wants sent is sent, its one timer re-armed, its events handed on.
Trunk host names are located here, once, when the trunks are loaded, as
RFC 3263 says (``sip.locate`` decides, dnspython asks): a name that locates
nowhere leaves its trunk out, logged. A ``tcp`` trunk's messages go over
one connection to each of its addresses, opened when first needed (and
again after it closes); the same port also accepts connections, for a
trunk that opens its own to send in-dialog requests to our Contact.

A ``tls`` trunk's connections are TLS (``client_context``): the carrier's
certificate checked against the trunk's CA or pinned certificate, and its
name against ``tls_server_name``. A connection that cannot be made (refused,
a certificate that does not verify or names another host) fails the calls
and registrations waiting on it at once (``SipClient.transport_failed``: a
503, so a call goes to the next trunk) instead of after the trunk's timeout.
Our Via carries ``alias`` (RFC 5923) over TCP and TLS, so the carrier sends
its in-dialog requests back over the connection we opened.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Callable
from typing import cast

import dns.asyncresolver
import dns.exception

from callbridge.bridge.sip_transport import log_failure
from callbridge.bridge.trunks import Trunk, TrunkConfigError, TrunkSpec
from callbridge.sip.errors import SipError
from callbridge.sip.locate import Answer, Kind, Locator, Naptr, Query, Srv
from callbridge.sip.message import StreamFramer
from callbridge.sip.uac import ClientConfig, Event, SipClient

log = logging.getLogger(__name__)

Address = tuple[str, int]
# Seconds a carrier has to finish a TLS handshake (the trunk's timeout, if shorter).
HANDSHAKE_TIMEOUT = 10.0


def client_context(spec: TrunkSpec) -> ssl.SSLContext:
    """The TLS context for calls through ``spec``: TLS 1.2+, the peer verified and named."""
    context = ssl.create_default_context(
        cafile=str(spec.tls_ca) if spec.tls_ca is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if spec.tls_cert is not None and spec.tls_key is not None:
        context.load_cert_chain(str(spec.tls_cert), str(spec.tls_key))
    return context


def tls_peers(trunks: list[Trunk]) -> dict[Address, tuple[ssl.SSLContext, str]]:
    """Each TLS trunk address, with its context and the name its certificate must carry."""
    peers: dict[Address, tuple[ssl.SSLContext, str]] = {}
    identity: dict[Address, tuple[object, ...]] = {}
    for trunk in trunks:
        spec = trunk.spec
        routes = [r for r in trunk.routes() if r.transport.upper() == "TLS"]
        context = client_context(spec) if routes else None
        for route in routes:
            assert context is not None
            name = spec.tls_server_name or spec.host or route.address[0]
            # One connection per address: two trunks there must trust it alike, or the
            # stricter one would ride on a connection only the other verified.
            ours = (name, spec.tls_ca, spec.tls_cert)
            if identity.setdefault(route.address, ours) != ours:
                raise TrunkConfigError(
                    f"trunk {spec.name}: {route.address[0]}:{route.address[1]} is another "
                    "TLS trunk's address with other tls_ca, tls_server_name or tls_cert"
                )
            peers[route.address] = (context, name)
    return peers


async def resolve(
    specs: tuple[TrunkSpec, ...],
    loop: asyncio.AbstractEventLoop,
    resolver: dns.asyncresolver.Resolver | None = None,
) -> list[Trunk]:
    """Each trunk with where it is: its addresses as written, or its host name located
    as RFC 3263 says (``sip.locate``: NAPTR, SRV, A/AAAA) through ``resolver`` (default:
    the system's). A name that locates nowhere leaves its trunk out, logged."""
    trunks: list[Trunk] = []
    for spec in specs:
        if spec.addresses or spec.host is None:
            trunks.append(Trunk(spec, spec.addresses))
            continue
        transport = spec.transport.upper() if spec.transport else None
        locator = Locator(spec.host, spec.port, transport, rng=random.Random())
        while (query := locator.next_query()) is not None:
            if resolver is None:
                try:  # made only when a name is to be asked: it reads /etc/resolv.conf
                    resolver = dns.asyncresolver.Resolver()
                except dns.exception.DNSException as error:
                    log.error("trunk %s: no DNS resolver (%s); not used", spec.name, error)
                    break
            locator.answer(query, await _ask(resolver, query, loop))
        if not locator.targets:
            # The server starts; the trunk is left out until the next start.
            log.error("trunk %s: %s locates nowhere (NAPTR/SRV/A); not used", spec.name, spec.host)
            continue
        log.info(
            "trunk %s: %s is at %s", spec.name, spec.host,
            ", ".join(f"{t.transport} {t.address}:{t.port}" for t in locator.targets),
        )  # fmt: skip
        trunks.append(Trunk(spec, targets=tuple(locator.targets)))
    return trunks


async def _ask(
    resolver: dns.asyncresolver.Resolver, query: Query, loop: asyncio.AbstractEventLoop
) -> Answer:
    """One RFC 3263 question; nothing for NXDOMAIN, no records, or no answer in time.

    A name's addresses that DNS does not give are asked of the system too
    (``getaddrinfo``: /etc/hosts and the rest of nsswitch), as before SRV.
    """
    kinds = ["A", "AAAA"] if query.kind is Kind.ADDRESS else [query.kind.value]
    records: list[Naptr | Srv | str] = []
    for kind in kinds:
        try:
            answer = await resolver.resolve(query.name, kind, raise_on_no_answer=False, lifetime=5)
        except dns.exception.DNSException as error:
            log.debug("DNS %s %s: %s", kind, query.name, error)
            continue
        for rdata in answer:
            if kind == "NAPTR":
                records.append(
                    Naptr(rdata.order, rdata.preference, rdata.flags.decode(),
                          rdata.service.decode(), rdata.replacement.to_text())
                )  # fmt: skip
            elif kind == "SRV":
                records.append(
                    Srv(rdata.priority, rdata.weight, rdata.port, rdata.target.to_text())
                )
            else:
                records.append(rdata.address)
    if query.kind is Kind.ADDRESS and not records:
        try:
            found = await loop.getaddrinfo(query.name, None, type=socket.SOCK_DGRAM)
        except OSError:
            found = []
        records.extend(dict.fromkeys(str(info[4][0]) for info in found))
    return records  # type: ignore[return-value]


def _why(error: BaseException) -> str:
    """A connection failure in a few words (a certificate's: what did not verify)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {error.verify_message}"[:200]
    return (str(error) or error.__class__.__name__)[:200]


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


class _TcpConnection(asyncio.Protocol):
    """One TCP connection to or from a trunk: framed, each message handed to the driver."""

    def __init__(self, driver: SipClientDriver) -> None:
        self.driver = driver
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.addr: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.addr = (peer[0], peer[1])
        if self.driver.allowed and self.addr[0] not in self.driver.allowed:
            self.transport.abort()  # only the trunks may connect
            return
        self.driver.connected(self.addr, self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except SipError as error:
            log.info("closing SIP TCP connection with %s: %s", self.addr, error)
            if self.transport is not None:
                self.transport.abort()
            return
        for message in messages:
            try:
                self.driver.receive(message, self.addr, stream=True)
            except Exception:
                log_failure("a SIP message over TCP to the client", self.addr, self.driver.now())

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.disconnected(self.addr, self.transport, exc)


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
        # The Contact a registration over TLS names (the bridge's TLS port), if it has one.
        self.register_tls_contact: Address | None = None
        self.allowed = allowed
        self.on_event = on_event
        self.loop = loop
        self.client: SipClient | None = None
        # Addresses reached over TCP (the tcp trunks'), and the connections open.
        self.tcp_peers: frozenset[Address] = frozenset()
        # Those of them reached over TLS: the context and the name to verify.
        self.tls_peers: dict[Address, tuple[ssl.SSLContext, str]] = {}
        self._connections: dict[Address, asyncio.Transport] = {}
        self._pending: dict[Address, list[bytes]] = {}  # written once connected
        self._tcp: asyncio.Server | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def open(self, port: int = 0) -> int:
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, port)
        )
        self._transport = transport
        port = transport.get_extra_info("sockname")[1]
        if self.tcp_peers:
            self._tcp = await self.loop.create_server(lambda: _TcpConnection(self), self.host, port)
        self.client = SipClient(
            ClientConfig(
                self.host,
                port,
                allowed=self.allowed,
                register_contact=self.register_contact,
                register_tls_contact=self.register_tls_contact,
            )
        )
        log.info(
            "SIP client (calls placed, registrations) on %s:%d (UDP%s)",
            self.host, port, " and TCP" if self._tcp else "",
        )  # fmt: skip
        return int(port)

    def now(self) -> float:
        return self.loop.time()

    def receive(self, data: bytes, addr: Address, stream: bool = False) -> None:
        assert self.client is not None
        self.client.receive_datagram(data, addr, self.now(), stream=stream)
        self.flush()

    def connected(self, addr: Address, transport: asyncio.Transport) -> None:
        self._connections[addr] = transport
        for data in self._pending.pop(addr, []):
            transport.write(data)

    def disconnected(
        self, addr: Address, transport: asyncio.Transport | None, exc: Exception | None = None
    ) -> None:
        """A connection closed: what still waits on it there fails now (RFC 3261 18.4: a
        transport error is a 503), e.g. a carrier that refuses our client certificate
        after a TLS 1.3 handshake, or one that closes mid-transaction."""
        if self._connections.get(addr) is not transport:
            return
        del self._connections[addr]
        if self.client is not None:
            reason = _why(exc) if exc is not None else "closed by the trunk"
            self.client.transport_failed(addr, f"connection lost: {reason}", self.now())
            self.flush()

    def _send_tcp(self, data: bytes, addr: Address) -> None:
        transport = self._connections.get(addr)
        if transport is not None and not transport.is_closing():
            transport.write(data)
            return
        pending = self._pending.get(addr)
        if pending is not None:
            if len(pending) < 64:  # a trunk that does not accept: not buffered for ever
                pending.append(data)
            return
        self._pending[addr] = [data]
        self.loop.create_task(self._connect(addr))

    async def _connect(self, addr: Address) -> None:
        tls = self.tls_peers.get(addr)
        try:
            if tls is None:
                await self.loop.create_connection(lambda: _TcpConnection(self), addr[0], addr[1])
            else:
                await self.loop.create_connection(
                    lambda: _TcpConnection(self),
                    addr[0],
                    addr[1],
                    ssl=tls[0],
                    server_hostname=tls[1],
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
        except (OSError, TimeoutError) as error:
            # What waits on it fails now (a call goes to the next trunk), not at its timeout.
            reason = _why(error)
            log.warning(
                "SIP client: no %s connection to %s: %s", "TLS" if tls else "TCP", addr, reason
            )
            self._pending.pop(addr, None)
            if self.client is not None:
                self.client.transport_failed(addr, reason, self.now())
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
            if addr in self.tcp_peers or addr in self._connections:
                self._send_tcp(data, addr)
            elif transport is not None and not transport.is_closing():
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
        if self._tcp is not None:
            self._tcp.close()
        for connection in list(self._connections.values()):
            connection.close()
