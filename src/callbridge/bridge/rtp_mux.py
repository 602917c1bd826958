"""One UDP port for the media of every call: read and written in batches.

With a port per leg, every frame sent to a listener is a system call of
its own, and on this kind of machine that, not Python, is what a thousand
listeners cost. With one port (``serve --rtp-mux``) the bridge advertises
the same port in every SDP answer, tells callers apart by the address their
RTP comes from, reads the port with ``recvmmsg`` from the lobby clock
(every 20 ms: a key is seen that much later at most) and sends everything
one tick produced with one ``sendmmsg`` per thousand datagrams.

Telling callers apart needs symmetric RTP (RFC 4961: a caller sends from
the address its SDP offered), which SIP trunks and phones do. A caller
whose RTP comes from elsewhere is latched to the first packet from its
SDP's host, but only while exactly one caller from that host has not been
heard yet: a guess between two callers would put one caller's voice or
keys on the other's leg, so the packets are dropped (and counted) instead.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket
import sys
from collections.abc import Callable
from typing import Protocol

from callbridge.bridge.rtp_transport import (
    DATAGRAM_MAX,
    HAVE_MMSG,
    MSG_DONTWAIT,
    NAME_MAX,
    Address,
    BatchReader,
    MessageArray,
    MMsgHdr,
)

log = logging.getLogger(__name__)

SEND_BATCH = 1024  # the kernel's limit on messages per sendmmsg (UIO_MAXIOV)
RECEIVE_BATCH = 256


class MuxPeer(Protocol):
    """What the mux needs of a call leg."""

    @property
    def quiet(self) -> bool:
        """Nobody hears this caller: their audio is only counted."""

    @property
    def audio_payload_type(self) -> int: ...

    def receive(self, data: bytes, addr: Address, now: float) -> None: ...

    def heard(self, packets: int, now: float) -> None: ...


def _load_sendmmsg() -> Callable[..., int] | None:
    if not HAVE_MMSG:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        function = libc.sendmmsg
    except AttributeError:
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_sendmmsg = _load_sendmmsg()


def sockaddr(addr: Address) -> bytes:
    """``addr`` as the kernel writes it into a received datagram's name (the lookup key)."""
    host, port = addr[0], addr[1]
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host)
        return (
            socket.AF_INET6.to_bytes(2, sys.byteorder)
            + port.to_bytes(2, "big")
            + bytes(4)
            + packed
            + bytes(4)
        )
    packed = socket.inet_pton(socket.AF_INET, host)
    return socket.AF_INET.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big") + packed + bytes(8)


class RtpMux:
    """The shared media port: who is behind which address, and the batches in and out."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        if _sendmmsg is None:
            raise OSError("one media port for all calls needs recvmmsg and sendmmsg (Linux)")
        sock.setblocking(False)
        # A tick's worth of a thousand callers arrives between two reads.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.loop = loop
        self._reader = BatchReader(RECEIVE_BATCH)
        self._out = MessageArray(SEND_BATCH)
        self._pending = 0
        self._flush_scheduled = False
        self._peers: dict[bytes, MuxPeer] = {}
        self._keys: dict[MuxPeer, list[bytes]] = {}  # the addresses each caller is known by
        self._expected: dict[MuxPeer, bytes] = {}
        self._unheard: set[MuxPeer] = set()
        self._names: dict[Address, bytes] = {}
        self.strays = 0  # datagrams from nobody we know
        self.dropped = 0  # datagrams the kernel would not send

    # -- who is where -------------------------------------------------------------

    def register(self, peer: MuxPeer, remote: Address) -> None:
        """``peer`` will send from (and be sent to) ``remote``, its SDP's address."""
        self.unregister(peer)
        key = sockaddr(remote)
        other = self._peers.get(key)
        if other is not None and other is not peer:
            log.warning("two calls offered the same media address %s:%d", *remote)
        self._peers[key] = peer
        self._keys[peer] = [key]
        self._expected[peer] = key
        self._unheard.add(peer)

    def unregister(self, peer: MuxPeer) -> None:
        for key in self._keys.pop(peer, []):
            if self._peers.get(key) is peer:
                del self._peers[key]
        self._expected.pop(peer, None)
        self._unheard.discard(peer)

    def _latch(self, name: bytes) -> MuxPeer | None:
        """The one caller not heard yet whose SDP host sent ``name``, if there is exactly one."""
        host = _host_of(name)
        candidates = [p for p in self._unheard if _host_of(self._expected[p]) == host]
        if len(candidates) != 1:
            return None
        peer = candidates[0]
        self._peers[name] = peer
        self._keys[peer].append(name)
        log.info(
            "media from %s:%d latched to a caller (asymmetric RTP)", *self._reader.address(name)
        )
        return peer

    # -- in -----------------------------------------------------------------------

    def drain(self, now: float) -> None:
        """Read everything queued and hand it to the callers it came from."""
        reader, array = self._reader, self._reader.array
        fd = self.sock.fileno()
        peers = self._peers
        while fd >= 0:
            received = reader.receive(fd)
            if not received:
                return
            lengths = array.lengths[:received].tolist()
            types = (array.second_octets[:received] & 0x7F).tolist()
            counted: dict[MuxPeer, int] = {}
            for i in range(received):
                name = array.name(i)
                peer = peers.get(name)
                if peer is None:
                    peer = self._latch(name)
                    if peer is None:
                        self.strays += 1
                        continue
                self._unheard.discard(peer)
                length = lengths[i]
                if length >= 12 and types[i] == peer.audio_payload_type and peer.quiet:
                    counted[peer] = counted.get(peer, 0) + 1
                    continue
                offset = array.at(i)
                data = array.data[offset : offset + length].tobytes()
                try:
                    peer.receive(data, reader.address(name), now)
                except Exception:
                    # A bad packet on one leg must never take the loop down.
                    log.exception("RTP handler failed for a datagram")
            for peer, packets in counted.items():
                peer.heard(packets, now)
            if received < reader.batch:
                return

    # -- out ----------------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address) -> None:
        """Queue ``data`` for ``addr``; everything queued in one loop callback goes out together."""
        if len(data) > DATAGRAM_MAX:
            self.dropped += 1
            return
        if self._pending == SEND_BATCH:
            self.flush()
        name = self._names.get(addr)
        if name is None:
            if len(self._names) > 10_000:
                self._names.clear()
            name = self._names[addr] = sockaddr(addr)
        out, slot = self._out, self._pending
        offset = out.at(slot)
        out.data[offset : offset + len(data)] = data
        out.iov_lengths[slot] = len(data)
        start = slot * NAME_MAX
        out.names[start : start + len(name)] = name
        out.name_lengths[slot] = len(name)
        self._pending = slot + 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what is queued: one system call per ``SEND_BATCH`` datagrams."""
        self._flush_scheduled = False
        count, self._pending = self._pending, 0
        if count == 0 or self.sock.fileno() < 0:
            return
        assert _sendmmsg is not None
        base = ctypes.addressof(self._out.msgs)
        size = ctypes.sizeof(MMsgHdr)
        fd = self.sock.fileno()
        start = 0
        while start < count:
            sent = _sendmmsg(fd, base + start * size, count - start, MSG_DONTWAIT)
            if sent < 0:
                code = ctypes.get_errno()
                if code == errno.EINTR:
                    continue
                if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                    # The send buffer is full: this tick's frames are late anyway.
                    self.dropped += count - start
                    return
                # One destination refused (unreachable, say): skip it, send the rest.
                self.dropped += 1
                start += 1
                continue
            start += sent

    def close(self) -> None:
        self.flush()
        self.sock.close()


def _host_of(name: bytes) -> bytes:
    family = int.from_bytes(name[0:2], sys.byteorder)
    return name[8:24] if family == socket.AF_INET6 else name[4:8]


class MuxedRtp:
    """A leg's media on the shared port: the same face as ``RtpSocket``."""

    attentive = False

    def __init__(self, mux: RtpMux, peer: MuxPeer, remote: Address) -> None:
        self.mux = mux
        self.peer = peer
        mux.register(peer, remote)

    @property
    def dropped(self) -> int:
        return self.mux.dropped

    def attend(self, attentive: bool) -> None:
        """Nothing to do: the mux reads every caller from the lobby clock."""

    def drain(self, count_only_type: int | None = None) -> int:
        return 0

    def sendto(self, data: bytes, addr: Address) -> None:
        self.mux.sendto(data, addr)

    def moved(self, remote: Address) -> None:
        """A re-INVITE gave the caller a new media address."""
        self.mux.register(self.peer, remote)

    def close(self) -> None:
        self.mux.unregister(self.peer)
