"""Thin asyncio glue around ``SipEndpoint``: UDP and TCP sockets, one timer.

Nothing here parses SIP. Bytes go into the endpoint with the loop's time;
what the endpoint wants sent is sent; its one timer is re-armed after every
call; its events go to the bridge.

Strangers (sources outside the trunk allow-list, ``sip.trunk``) cost as
little as the glue can make them: a UDP datagram is refused from its source
address before anything else (no parse, no event, no timer re-armed); a TCP
connection is closed on accept. TCP connections are capped per source
(``MAX_PER_SOURCE``) and in all, and closed after ``IDLE_TIMEOUT`` without
a complete message or a CRLF keep-alive (RFC 5626) unless a call they
carry is still up; the framer caps what one connection may buffer.

SIP over TLS (RFC 3261 section 26, port 5061) is the TCP glue with the
handshake put in front: the connection is screened by address first (a
stranger never gets a handshake), then ``SipTlsConnection`` runs it over
memory buffers; one that
fails (a plaintext client, a wrong or missing client certificate, a peer
that never finishes) is counted (``SipTcpServer.handshake_failed``) and
closed, and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from callbridge.sip.endpoint import Event, SipEndpoint
from callbridge.sip.errors import SipError
from callbridge.sip.message import MAX_FRAMER_BUFFER, StreamFramer
from callbridge.throttle import Throttle

log = logging.getLogger(__name__)

Address = tuple[str, int]
EventSink = Callable[[SipEndpoint, Event], None]

# Seconds a TCP connection may go without a whole message or a keep-alive.
IDLE_TIMEOUT = 60.0
# TCP connections one address may hold open (a carrier's SBC uses a few).
MAX_PER_SOURCE = 32
# Seconds a TLS client has to finish its handshake.
HANDSHAKE_TIMEOUT = 10.0
# One traceback a minute for failures the endpoint did not catch (bugs).
_failures = Throttle(60.0, max_keys=1)


def server_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """The TLS port's context: TLS 1.2 or later; with ``ca``, a client certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca is not None:
        # Mutual TLS: only a trunk holding a certificate from ``ca`` gets past the handshake.
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def log_failure(what: str, addr: Address, now: float) -> None:
    """Log the exception being handled, with its traceback at most once a minute."""
    if _failures.allow("failure", now):
        more = _failures.take_suppressed()
        log.exception("%s from %s failed%s", what, addr, f" ({more} more since)" if more else "")


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
        endpoint = self.endpoint
        if not endpoint.gate.allowed(addr[0]):
            # A stranger: refused without a parse, an event or a timer.
            endpoint.refuse(data, addr, self.loop.time())
            for out, to in endpoint.datagrams_to_send():
                self.send(out, to)
            return
        endpoint.receive_datagram(data, addr, self.loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the endpoint produced, deliver its events, re-arm its timer."""
        for data, addr in self.endpoint.datagrams_to_send():
            self.send(data, addr)
        while (event := self.endpoint.next_event()) is not None:
            try:
                self.on_event(self.endpoint, event)
            except Exception:
                log_failure(f"handling {type(event).__name__}", ("bridge", 0), self.loop.time())
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
            log_failure("a SIP datagram", addr, self.driver.loop.time())

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP socket error: %s", exc)


class SipTcpServer:
    """SIP over TCP: one framer per connection, responses back on the same connection."""

    MAX_CONNECTIONS = 1000
    # A peer that stops reading its answers is cut off rather than buffered for.
    MAX_WRITE_BUFFER = 1 << 20

    def __init__(
        self,
        driver: EndpointDriver,
        idle_timeout: float = IDLE_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.driver = driver
        self.idle_timeout = idle_timeout
        # Set: every connection is TLS (``SipTlsConnection``).
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.handshakes = 0
        self.handshake_failed = 0
        self._handshake_logs = Throttle(60.0, max_keys=64)  # once per source per minute
        self.connections: dict[Address, asyncio.Transport] = {}
        self.per_source: dict[str, int] = {}
        self.closed_idle = 0
        self.refused_over_cap = 0
        self._cap_logs = Throttle(60.0, max_keys=64)  # once per source per minute
        driver.send = self._send

    async def listen(self, host: str, port: int) -> asyncio.Server:
        """Accept connections on ``host:port``."""
        if self.tls is not None:
            return await self.driver.loop.create_server(lambda: SipTlsConnection(self), host, port)
        return await self.driver.loop.create_server(lambda: SipTcpConnection(self), host, port)

    def handshake_failure(self, addr: Address, error: BaseException) -> None:
        self.handshake_failed += 1
        if self._handshake_logs.allow(addr[0], self.driver.loop.time()):
            log.warning(
                "SIP over TLS from %s: handshake failed (%s)",
                addr[0],
                error.__class__.__name__ if not str(error) else str(error)[:120],
            )

    def _send(self, data: bytes, addr: Address) -> None:
        transport = self.connections.get(addr)
        if transport is None or transport.is_closing():
            log.debug("no TCP connection to %s for a SIP message", addr)
            return
        if transport.get_write_buffer_size() > self.MAX_WRITE_BUFFER:
            log.info("closing SIP TCP connection to %s: it does not read", addr)
            transport.abort()
            return
        transport.write(data)

    def admit(self, addr: Address) -> bool:
        """May a connection from ``addr`` stay open? (Asked once, on accept.)"""
        endpoint = self.driver.endpoint
        now = self.driver.loop.time()
        if not endpoint.gate.allowed(addr[0]):
            refusal = endpoint.gate.refuse(addr[0], now)
            if refusal.log:
                log.warning("SIP over TCP from %s refused: not an allowed trunk address", addr[0])
            return False
        if len(self.connections) >= self.MAX_CONNECTIONS:
            return False
        if self.per_source.get(addr[0], 0) >= MAX_PER_SOURCE:
            self.refused_over_cap += 1
            if self._cap_logs.allow(addr[0], now):
                log.warning(
                    "SIP over TCP from %s refused: %d connections open", addr[0], MAX_PER_SOURCE
                )
            return False
        return True

    def opened(self, addr: Address, transport: asyncio.Transport) -> None:
        self.connections[addr] = transport
        self.per_source[addr[0]] = self.per_source.get(addr[0], 0) + 1

    def closed(self, addr: Address) -> None:
        if self.connections.pop(addr, None) is None:
            return
        left = self.per_source.get(addr[0], 1) - 1
        if left:
            self.per_source[addr[0]] = left
        else:
            self.per_source.pop(addr[0], None)


class SipTcpConnection(asyncio.Protocol):
    """One accepted connection: screened on accept, framed, timed out when idle."""

    def __init__(self, server: SipTcpServer) -> None:
        self.server = server
        self.loop = server.driver.loop
        self.transport: asyncio.Transport | None = None
        self.addr: Address = ("", 0)
        self.framer = StreamFramer()
        self.last_active = self.loop.time()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.addr = (peer[0], peer[1])
        if not self.server.admit(self.addr):
            transport.abort()  # at once: nothing read, nothing kept
            return
        self.established(transport)

    def established(self, transport: asyncio.Transport) -> None:
        """The connection carries SIP from now on (after its handshake, over TLS)."""
        self.last_active = self.loop.time()
        self.transport = transport
        self.server.opened(self.addr, transport)
        self._idle = self.loop.call_at(
            self.last_active + self.server.idle_timeout, self._check_idle
        )

    def _check_idle(self) -> None:
        due = self.last_active + self.server.idle_timeout
        now = self.loop.time()
        if now >= due and not self.server.driver.endpoint.has_calls_from(self.addr):
            self.server.closed_idle += 1
            log.info("closing SIP TCP connection from %s: idle", self.addr)
            self._abort()
            return
        self._idle = self.loop.call_at(max(due, now + 1.0), self._check_idle)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        try:
            messages = self.framer.feed(data)
        except SipError as error:
            log.info("closing SIP TCP connection from %s: %s", self.addr, error)
            self._abort()
            return
        if messages or not data.strip(b"\r\n"):
            # A whole message, or a keep-alive: a dribbled partial one is not activity.
            self.last_active = self.loop.time()
        for message in messages:
            try:
                self.server.driver.receive(message, self.addr)
            except Exception:
                log_failure("a SIP message over TCP", self.addr, self.loop.time())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.transport is not None:
            self.server.closed(self.addr)
            self.transport = None


class SipTlsConnection(SipTcpConnection):
    """A connection to the TLS port: screened, then its handshake, then SIP as over TCP.

    TLS runs here over memory buffers (``ssl.SSLObject``), not by
    ``loop.start_tls``: under uvloop, the media plane's loop, a ClientHello
    that arrived before ``start_tls`` took the socket (a client that speaks
    first, as every TLS client does) went to this protocol instead, and the
    handshake waited for it until the timeout. Here every byte goes through
    one path, on either loop.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.addr = (peer[0], peer[1])
        self._tls: ssl.SSLObject | None = None
        if not self.server.admit(self.addr):
            transport.abort()  # a stranger: no handshake
            return
        assert self.server.tls is not None
        self._raw = transport
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = self.server.tls.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshaking: asyncio.TimerHandle | None = self.loop.call_later(
            self.server.handshake_timeout, self._handshake_too_slow
        )

    def _handshake_too_slow(self) -> None:
        self._handshaking = None
        timeout = self.server.handshake_timeout
        self._fail(TimeoutError(f"SSL handshake is taking longer than {timeout:g} seconds"))

    def _fail(self, error: BaseException) -> None:
        self.server.handshake_failure(self.addr, error)
        self._tls = None
        self._raw.abort()

    def _flush(self) -> None:
        """Send what TLS has written (handshake records, ciphertext)."""
        data = self._outgoing.read()
        if data and not self._raw.is_closing():
            self._raw.write(data)

    def write_plain(self, data: bytes) -> None:
        """SIP to the peer, encrypted."""
        if self._tls is None:
            return
        try:
            self._tls.write(data)
        except (ssl.SSLError, OSError):
            self._raw.abort()
            return
        self._flush()

    def data_received(self, data: bytes) -> None:
        tls = self._tls
        if tls is None:
            return
        self._incoming.write(data)
        if self._handshaking is not None:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except Exception as error:  # ssl.SSLError is an OSError; anything else too
                # Closed without the alert TLS wrote: a refused peer learns nothing more.
                self._handshaking.cancel()
                self._handshaking = None
                self._fail(error)
                return
            self._flush()
            self._handshaking.cancel()
            self._handshaking = None
            self.server.handshakes += 1
            self.established(SecureTransport(self, self._raw))
        plain: list[bytes] = []
        while True:
            try:
                chunk = tls.read(MAX_FRAMER_BUFFER)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLError, OSError) as error:
                log.info("closing SIP TLS connection from %s: %s", self.addr, error)
                self._raw.abort()
                return
            if not chunk:  # the peer's close_notify
                break
            plain.append(chunk)
        self._flush()  # what reading wrote (a TLS 1.3 session ticket, a key update)
        if plain:
            super().data_received(b"".join(plain))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls is not None and self._handshaking is not None:
            self._handshaking.cancel()
            self._handshaking = None
            self.server.handshake_failure(
                self.addr, exc or ConnectionError("closed in the handshake")
            )
        self._tls = None
        super().connection_lost(exc)


class SecureTransport(asyncio.Transport):
    """The connection as SIP sees it once TLS is up: writes are encrypted."""

    def __init__(self, connection: SipTlsConnection, raw: asyncio.Transport) -> None:
        super().__init__()
        self._connection = connection
        self._raw = raw

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._connection.write_plain(bytes(data))

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def close(self) -> None:
        self._raw.close()

    def abort(self) -> None:
        self._raw.abort()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._raw.get_extra_info(name, default)
