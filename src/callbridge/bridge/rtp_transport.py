"""RTP sockets for call legs: a port pool, and sockets read in batches.

Each leg gets its own even-numbered UDP port from the configured range (RTCP,
if a peer sends it, arrives on the same socket and is dropped by the leg).
The socket parses nothing: it hands datagrams to the leg with the loop's
time, as the sans-IO habit asks.

A thousand listeners send fifty packets a second each, and none of it is
audio anyone hears: it is proof of life, and now and then a key (*1). So a
socket is read in one of two ways. An *attentive* socket (a caller in the
IVR, a speaker) is watched by the loop and drained the moment data arrives.
A *quiet* socket (a listener) is not watched at all: the bridge drains it a
few times a second, one ``recvmmsg`` system call for everything queued, and
packets of the leg's audio payload type are only counted, never copied
into Python objects. Reading one datagram per readiness event was most of
the bridge's CPU with 500 listeners.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

Address = tuple[str, int]
DatagramHandler = Callable[[bytes, Address, float], None]


class QuietPeer(Protocol):
    """What reading a leg's socket needs of the leg."""

    @property
    def quiet(self) -> bool:
        """Nobody hears this caller: their audio is only counted."""

    @property
    def audio_payload_type(self) -> int: ...

    def heard(self, packets: int, now: float) -> None: ...


class PortRangeExhausted(Exception):
    """No free even port is left in the RTP range."""


class RtpPortPool:
    """Hands out even UDP ports from [low, high], round robin so a port rests before reuse."""

    def __init__(self, low: int, high: int) -> None:
        if low % 2:
            low += 1
        if high <= low:
            raise ValueError("the RTP port range is empty")
        self.low, self.high = low, high
        self._in_use: set[int] = set()
        self._next = low

    def _candidates(self) -> list[int]:
        ports = list(range(self.low, self.high + 1, 2))
        start = (self._next - self.low) // 2
        return ports[start:] + ports[:start]

    def bind(self, host: str) -> tuple[socket.socket, int]:
        """A bound, non-blocking UDP socket on a free port of the range."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidates():
            if port in self._in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            # A burst of a thousand listeners' silence must not overflow the queue.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            self._in_use.add(port)
            self._next = port + 2 if port + 2 <= self.high else self.low
            return sock, port
        raise PortRangeExhausted(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


# -- batched reading -----------------------------------------------------------------

BATCH = 64  # datagrams per recvmmsg call
DATAGRAM_MAX = 2048  # RTP over UDP on a 1500-byte path; longer is cut and counted bad
NAME_MAX = 28  # sizeof(struct sockaddr_in6)
MSG_DONTWAIT = 0x40


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IoVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _load_recvmmsg() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(MMsgHdr),
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    function.restype = ctypes.c_int
    return function


_recvmmsg = _load_recvmmsg()


def _decode_name(raw: bytes) -> Address:
    family = int.from_bytes(raw[0:2], sys.byteorder)
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


class MessageArray:
    """Buffers for ``recvmmsg``: ``size`` datagrams with their addresses.

    The kernel's answers (lengths, address lengths, the RTP payload type
    octet) are read and written as numpy columns, not through ctypes fields.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data = ctypes.create_string_buffer(size * DATAGRAM_MAX)
        self._names = ctypes.create_string_buffer(size * NAME_MAX)
        self._iov = (_IoVec * size)()
        self.msgs = (MMsgHdr * size)()
        base = ctypes.addressof(self._data)
        names = ctypes.addressof(self._names)
        for i in range(size):
            self._iov[i].iov_base = base + i * DATAGRAM_MAX
            self._iov[i].iov_len = DATAGRAM_MAX
            header = self.msgs[i].msg_hdr
            header.msg_name = names + i * NAME_MAX
            header.msg_iov = ctypes.pointer(self._iov[i])
            header.msg_iovlen = 1
            header.msg_namelen = NAME_MAX
        self.data = memoryview(self._data).cast("B")
        self.names = memoryview(self._names).cast("B")
        words = np.frombuffer(memoryview(self.msgs).cast("B"), dtype=np.uint32).reshape(size, -1)
        self.name_lengths = words[:, _MsgHdr.msg_namelen.offset // 4]
        self.lengths = words[:, MMsgHdr.msg_len.offset // 4]
        self.second_octets = np.frombuffer(self.data, dtype=np.uint8)[1::DATAGRAM_MAX]

    def name(self, i: int) -> bytes:
        """The address of datagram ``i``, a raw sockaddr as the kernel wrote it."""
        return self.names[i * NAME_MAX : i * NAME_MAX + int(self.name_lengths[i])].tobytes()

    def at(self, i: int) -> int:
        """The offset of datagram ``i`` in ``data``."""
        return i * DATAGRAM_MAX


class BatchReader:
    """Reads every queued datagram of a socket in as few system calls as it can.

    One reader (its buffers) serves every socket of the bridge: reading is
    synchronous on the loop's thread, so the buffers are never shared at once.
    Where ``recvmmsg`` is missing (not Linux) it falls back to ``recvfrom``.
    """

    def __init__(self, batch: int = BATCH) -> None:
        self.batch = batch
        self.array = MessageArray(batch)
        # Peers are few and stable: decode each address once.
        self._addresses: dict[bytes, Address] = {}

    def address(self, name: bytes) -> Address:
        """``name`` (a raw sockaddr) as a (host, port) tuple."""
        address = self._addresses.get(name)
        if address is None:
            if len(self._addresses) > 10_000:
                self._addresses.clear()
            address = self._addresses[name] = _decode_name(name)
        return address

    def receive(self, fd: int) -> int:
        """One ``recvmmsg`` into ``array``; how many arrived (0 when none is queued)."""
        assert _recvmmsg is not None
        array = self.array
        # The kernel wrote the actual address lengths of the last batch.
        array.name_lengths[:] = NAME_MAX
        received = _recvmmsg(fd, array.msgs, self.batch, MSG_DONTWAIT, None)
        if received < 0:
            code = ctypes.get_errno()
            if code not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                # ICMP port unreachable from a caller who hung up, and the like.
                log.debug("RTP socket error: %s", errno.errorcode.get(code, code))
            return 0
        return received

    def drain(
        self,
        sock: socket.socket,
        deliver: Callable[[bytes, Address], None],
        count_only_type: int | None = None,
    ) -> int:
        """Read everything queued on ``sock``; returns how many datagrams were only counted.

        A datagram of RTP payload type ``count_only_type`` is counted and
        dropped; every other one goes to ``deliver(data, addr)``. A
        datagram longer than ``DATAGRAM_MAX`` arrives cut short.
        """
        if _recvmmsg is None:
            return self._drain_slowly(sock, deliver, count_only_type)
        counted = 0
        fd = sock.fileno()
        array = self.array
        while True:
            if sock.fileno() != fd:
                return counted  # closed by a handler while draining
            received = self.receive(fd)
            lengths = array.lengths[:received]
            rest: Iterable[int]
            if count_only_type is None:
                rest = range(received)
            else:
                audio = (lengths >= 12) & (
                    (array.second_octets[:received] & 0x7F) == count_only_type
                )
                audio_count = int(np.count_nonzero(audio))
                counted += audio_count
                # A listener's socket holds nothing but audio, nearly always.
                rest = () if audio_count == received else np.flatnonzero(~audio).tolist()
            for i in rest:
                offset = array.at(i)
                data = array.data[offset : offset + int(lengths[i])].tobytes()
                deliver(data, self.address(array.name(i)))
            if received < self.batch:
                return counted

    def _drain_slowly(
        self,
        sock: socket.socket,
        deliver: Callable[[bytes, Address], None],
        count_only_type: int | None,
    ) -> int:
        counted = 0
        while True:
            try:
                data, address = sock.recvfrom(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return counted
            except OSError as error:
                log.debug("RTP socket error: %s", error)
                return counted
            if (
                count_only_type is not None
                and len(data) >= 12
                and data[1] & 0x7F == count_only_type
            ):
                counted += 1
            else:
                deliver(data, address[:2])


class RtpSocket:
    """One leg's RTP socket: read by the loop (attentive) or drained by the bridge (quiet).

    Media goes out through the socket itself: a 20 ms frame that cannot be
    sent at once is better dropped (and counted) than queued behind the next
    one, which an asyncio transport's buffering would do.
    """

    def __init__(
        self,
        sock: socket.socket,
        handler: DatagramHandler,
        loop: asyncio.AbstractEventLoop,
        reader: BatchReader,
    ) -> None:
        self.sock: socket.socket | None = sock
        self.handler = handler
        self.loop = loop
        self.reader = reader
        self.dropped = 0
        self.attentive = False
        self._sendto = sock.sendto
        self.attend(True)

    def attend(self, attentive: bool) -> None:
        """Watch the socket on the loop (True) or leave it to ``drain`` (False)."""
        if self.sock is None or attentive is self.attentive:
            return
        if attentive:
            self.loop.add_reader(self.sock.fileno(), self._readable)
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.attentive = attentive

    def _readable(self) -> None:
        self.drain()

    def drain(self, count_only_type: int | None = None) -> int:
        """Hand every queued datagram to the handler; returns those only counted."""
        if self.sock is None:
            return 0
        return self.reader.drain(self.sock, self._deliver, count_only_type)

    def _deliver(self, data: bytes, addr: Address) -> None:
        try:
            self.handler(data, addr, self.loop.time())
        except Exception:
            # A bad packet on one leg must never take the loop down.
            log.exception("RTP handler failed for a datagram from %s", addr)

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            self._sendto(data, addr)
        except OSError:
            # Full buffer (BlockingIOError), the caller's port is gone, or closed.
            self.dropped += 1

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self.attentive:
            self.loop.remove_reader(sock.fileno())
            self.attentive = False
        sock.close()


def sweep(legs: Iterable[tuple[QuietPeer, RtpSocket]], now: float) -> None:
    """Watch the sockets of legs someone hears; drain (and count) the quiet ones.

    A leg that stops being quiet (the moderator opened a questioner's line)
    has its backlog counted, not played: up to one sweep of audio from
    before the line opened would otherwise sit in its jitter buffer as delay
    for the whole question. Keys in the backlog still count.
    """
    for leg, rtp in legs:
        quiet = leg.quiet
        if quiet or not rtp.attentive:
            leg.heard(rtp.drain(leg.audio_payload_type), now)
        rtp.attend(not quiet)
