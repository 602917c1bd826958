"""RTP sockets for call legs: a port pool, and sockets read in batches.

Each leg gets its own even-numbered UDP port from the configured range (RTCP,
if a peer sends it, arrives on the same socket and is dropped by the leg).
The socket parses nothing: it hands datagrams to the leg with the loop's
time, as the sans-IO habit asks.

A thousand listeners send fifty packets a second each, and none of it is
audio anyone hears: it is proof of life, and now and then a key (*1). So a
*quiet* leg's socket (a listener's) gets a socket filter (classic BPF, run
by the kernel before the datagram is queued) that drops the caller's audio
but one packet in ``AUDIO_SAMPLE`` (chosen by sequence number: about one
every 1.3 s, proof enough against the media timeout) and lets everything
else through: keys, RTCP, anything unexpected. What is left is a trickle,
so the loop watches every socket, and a key is seen the moment it arrives.
Without socket filters (not Linux), a quiet socket is not watched but
drained by the bridge a few times a second instead, one ``recvmmsg`` for
all that is queued, its audio counted in numpy. Reading one datagram per
readiness event was most of the bridge's CPU with 500 listeners; reading
all of them in batches was still a sixth of it at 1,000.

Media is only heard from the leg's negotiated peer (``bridge.leg``). A
latched socket is connected to the peer, so the kernel drops everyone
else's datagrams (uncounted); an unlatched one hands strangers' datagrams to
the leg, which drops and counts them, and ``drain`` counts audio as proof
of life only when it comes from the peer's host (one numpy compare per
batch; a stranger's audio goes to the leg to be dropped).

Ports are handed out at random from the range (``RtpPortPool``): a port
cannot be guessed from the last call's.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import secrets
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from callbridge.throttle import Throttle

log = logging.getLogger(__name__)
# One traceback a minute for a handler that fails on datagrams.
_failures = Throttle(60.0, max_keys=1)

Address = tuple[str, int]
DatagramHandler = Callable[[bytes, Address, float], None]


class QuietPeer(Protocol):
    """What reading a leg's socket needs of the leg."""

    @property
    def quiet(self) -> bool:
        """Nobody hears this caller: their audio is only counted."""

    @property
    def audio_payload_type(self) -> int: ...

    # Where the leg sends (its SDP), the host its media may come from, where
    # its last datagram came from, and when.
    remote: Address
    peer_host: str
    last_source: Address | None
    last_rx: float

    def heard(self, packets: int, now: float) -> None: ...

    def route_changed(self) -> None:
        """The socket was latched onto the caller's address, or let go of it."""


class PortRangeExhausted(Exception):
    """No free even port is left in the RTP range."""


class RtpPortPool:
    """Hands out even UDP ports from [low, high] at random, so a call's port cannot be guessed.

    A released port rests (is not handed out again) while ``rest`` others
    are released after it, so late datagrams of one call do not land in
    the next; when the range is nearly full, resting ports are used too.
    """

    RANDOM_TRIES = 32

    def __init__(self, low: int, high: int, rest: int | None = None) -> None:
        if low % 2:
            low += 1
        if high <= low:
            raise ValueError("the RTP port range is empty")
        self.low, self.high = low, high
        self.size = (high - low) // 2 + 1
        self._in_use: set[int] = set()
        self._resting: deque[int] = deque(maxlen=min(256, self.size // 4) if rest is None else rest)
        self._random = secrets.SystemRandom()

    def _candidates(self) -> Iterator[int]:
        """Random ports first; then, if those were taken, every port in a random order."""
        for _ in range(self.RANDOM_TRIES):
            port = self.low + 2 * self._random.randrange(self.size)
            if port not in self._in_use and port not in self._resting:
                yield port
        ports = list(range(self.low, self.high + 1, 2))
        self._random.shuffle(ports)
        yield from (port for port in ports if port not in self._in_use)

    def bind(self, host: str) -> tuple[socket.socket, int]:
        """A bound, non-blocking UDP socket on a free port of the range."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidates():
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            except OSError as error:  # out of file descriptors, or the like
                raise PortRangeExhausted(f"no RTP socket: {error}") from error
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            # A burst of a thousand listeners' silence must not overflow the queue.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            self._in_use.add(port)
            return sock, port
        raise PortRangeExhausted(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.discard(port)
            self._resting.append(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


# -- the quiet legs' filter ---------------------------------------------------------------

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
AUDIO_SAMPLE = 64  # one audio packet in this many reaches a quiet leg; a power of two
_UDP_HEADER = 8  # a UDP socket's filter sees the datagram from its UDP header on
_BPF_LD_B_ABS, _BPF_LD_H_ABS, _BPF_AND_K, _BPF_JEQ_K, _BPF_RET_K = 0x30, 0x28, 0x54, 0x15, 0x06


def audio_sampler(payload_type: int, sample: int = AUDIO_SAMPLE) -> list[tuple[int, int, int, int]]:
    """A socket filter: drop RTP of ``payload_type`` unless its sequence number is 0 mod ``sample``.

    Every other datagram (keys, RTCP, other payload types, anything
    shorter than an RTP header's first four octets) passes.
    """
    if sample & (sample - 1) or not 0 <= payload_type <= 127:
        raise ValueError("sample must be a power of two and payload_type 0-127")
    return [
        (_BPF_LD_B_ABS, 0, 0, _UDP_HEADER + 1),  # marker bit and payload type
        (_BPF_AND_K, 0, 0, 0x7F),
        (_BPF_JEQ_K, 0, 3, payload_type),  # the caller's audio? else keep it
        (_BPF_LD_H_ABS, 0, 0, _UDP_HEADER + 2),  # sequence number
        (_BPF_AND_K, 0, 0, sample - 1),
        (_BPF_JEQ_K, 0, 1, 0),
        (_BPF_RET_K, 0, 0, 0xFFFFFFFF),  # keep
        (_BPF_RET_K, 0, 0, 0),  # drop
    ]


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """``SO_ATTACH_FILTER``: the kernel copies the program, so it need not outlive the call."""
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog: a length, then a pointer to the instructions.
    fprog = struct.pack("=H6xQ", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# -- latching onto a caller ---------------------------------------------------------------

# A latched socket that hears nothing from its caller this long lets go (the
# caller's media may have moved without a re-INVITE); sampled audio alone
# arrives every AUDIO_SAMPLE x 20 ms = 1.3 s.
LATCH_SILENCE = 5.0
_AF_UNSPEC_NAME = struct.pack("=H14x", socket.AF_UNSPEC)


def libc_function(
    name: str, argtypes: list[Any] | None, restype: Any, keep_gil: bool = False
) -> Callable[..., int] | None:
    """The C library's ``name`` with its signature, or None where it is missing (not Linux).

    ``argtypes`` None leaves the arguments unchecked (``syscall`` takes any).

    ``keep_gil`` (PyDLL) keeps the GIL through the call: for calls that never
    wait, since letting the GIL go hands it to any busy thread (a database
    query) for a whole switch interval before the media clock gets it back.
    """
    if not sys.platform.startswith("linux"):
        return None
    path = ctypes.util.find_library("c") or "libc.so.6"
    try:
        library = (ctypes.PyDLL if keep_gil else ctypes.CDLL)(path, use_errno=True)
        function = getattr(library, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = restype
    return function  # type: ignore[no-any-return]


# ``socket.connect`` cannot take AF_UNSPEC, which is how a UDP socket is disconnected.
_connect = libc_function("connect", [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int)


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


# Never waits (MSG_DONTWAIT): the GIL is kept.
_recvmmsg = libc_function(
    "recvmmsg",
    [ctypes.c_int, ctypes.POINTER(MMsgHdr), ctypes.c_uint, ctypes.c_int, ctypes.c_void_p],
    ctypes.c_int,
    keep_gil=True,
)


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
        self.name_octets = np.frombuffer(self.names, dtype=np.uint8).reshape(size, NAME_MAX)
        # Word 1 of a sockaddr_in is its IPv4 address: one compare per batch.
        self.name_words = np.frombuffer(self.names, dtype=np.uint32).reshape(size, NAME_MAX // 4)

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
        self._host_patterns: dict[str, int | np.ndarray | None] = {}

    def _host_pattern(self, host: str) -> int | np.ndarray | None:
        """``host`` as a raw sockaddr holds it: an IPv4 address as word 1, an IPv6 one
        as octets 8-23 (with the family in octets 0-1); None: not an IP address."""
        if host in self._host_patterns:
            return self._host_patterns[host]
        pattern: int | np.ndarray | None = None
        try:
            pattern = int.from_bytes(socket.inet_pton(socket.AF_INET, host), sys.byteorder)
        except OSError:
            try:
                packed = socket.inet_pton(socket.AF_INET6, host)
            except OSError:
                pass
            else:
                octets = np.zeros(24, dtype=np.uint8)
                family = int(socket.AF_INET6).to_bytes(2, sys.byteorder)
                octets[0:2] = np.frombuffer(family, dtype=np.uint8)
                octets[8:] = np.frombuffer(packed, dtype=np.uint8)
                pattern = octets
        if len(self._host_patterns) > 10_000:
            self._host_patterns.clear()
        self._host_patterns[host] = pattern
        return pattern

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
        count_only_from: str | None = None,
    ) -> int:
        """Read everything queued on ``sock``; returns how many datagrams were only counted.

        A datagram of RTP payload type ``count_only_type`` from the host
        ``count_only_from`` (any host if None) is counted and dropped; every
        other one goes to ``deliver(data, addr)``, which judges it (a
        stranger's audio is not proof that the caller is there). A datagram
        longer than ``DATAGRAM_MAX`` arrives cut short.
        """
        if _recvmmsg is None:
            return self._drain_slowly(sock, deliver, count_only_type, count_only_from)
        counted = 0
        fd = sock.fileno()
        array = self.array
        pattern = None if count_only_from is None else self._host_pattern(count_only_from)
        while True:
            if sock.fileno() != fd:
                return counted  # closed by a handler while draining
            received = self.receive(fd)
            if not received:
                return counted  # the usual case for a filtered socket: no numpy at all
            lengths = array.lengths[:received]
            rest: Iterable[int]
            if count_only_type is None:
                rest = range(received)
            else:
                audio = (lengths >= 12) & (
                    (array.second_octets[:received] & 0x7F) == count_only_type
                )
                if count_only_from is not None:
                    if pattern is None:
                        audio[:] = False
                    elif isinstance(pattern, int):
                        # An IPv4 socket only hears IPv4: the address word is enough.
                        audio &= array.name_words[:received, 1] == pattern
                    else:
                        names = array.name_octets[:received, :24]
                        audio &= (names[:, 0:2] == pattern[0:2]).all(axis=1)
                        audio &= (names[:, 8:] == pattern[8:]).all(axis=1)
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
        count_only_from: str | None = None,
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
                and (count_only_from is None or address[0] == count_only_from)
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
        self._sampled_type: int | None = None
        # The caller's address once the socket is connected to it (``latch``).
        self.peer: Address | None = None
        # Quiet legs' audio filtered by the kernel (False: their sockets are drained instead).
        self.filters = sys.platform.startswith("linux")
        self.attend(True)

    def sample_audio(self, payload_type: int | None) -> bool:
        """Let the kernel drop all but a sample of ``payload_type`` (None: let all of it in).

        False where socket filters are not available.
        """
        if self.sock is None or not self.filters:
            return False
        if payload_type == self._sampled_type:
            return True
        try:
            if payload_type is None:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            else:
                attach_filter(self.sock, audio_sampler(payload_type))
        except OSError as error:
            log.info("no socket filter on RTP sockets (%s): quiet legs are drained", error)
            self.filters = False
            return False
        self._sampled_type = payload_type
        return True

    def latch(self, peer: Address | None) -> bool:
        """Connect the socket to ``peer`` (None: disconnect); True if that changed anything.

        A connected UDP socket sends without a route lookup per datagram (a
        fifth less kernel time per listener frame here) but hears nobody
        else: only latch onto a caller whose datagrams are seen coming from
        the address their SDP gave (symmetric RTP, RFC 4961).
        """
        if self.sock is None or peer == self.peer or _connect is None:
            return False
        try:
            if peer is None:
                if _connect(self.sock.fileno(), _AF_UNSPEC_NAME, len(_AF_UNSPEC_NAME)) != 0:
                    raise OSError(ctypes.get_errno(), "disconnect")
            else:
                self.sock.connect(peer)
        except OSError as error:
            log.debug("RTP socket: cannot %s: %s", "latch" if peer else "let go", error)
            return False
        self.peer = peer
        return True

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

    def drain(self, count_only_type: int | None = None, count_only_from: str | None = None) -> int:
        """Hand every queued datagram to the handler; returns those only counted.

        Audio (``count_only_type``) is only counted when it comes from the
        host ``count_only_from``; the handler gets the rest.
        """
        if self.sock is None:
            return 0
        return self.reader.drain(self.sock, self._deliver, count_only_type, count_only_from)

    def _deliver(self, data: bytes, addr: Address) -> None:
        try:
            self.handler(data, addr, self.loop.time())
        except Exception:
            # A bad packet on one leg must never take the loop down, nor a
            # flood of them fill the log with tracebacks.
            now = self.loop.time()
            if _failures.allow("rtp", now):
                more = _failures.take_suppressed()
                log.exception(
                    "RTP handler failed for a datagram from %s%s",
                    addr,
                    f" ({more} more failures since the last one logged)" if more else "",
                )

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
    """Set how each leg's socket is read, and whether it is latched onto its caller.

    A quiet leg's audio is filtered in the kernel, and its socket latches
    onto the caller once their datagrams come from their SDP address; it
    lets go after LATCH_SILENCE without one, or when the address moves. A
    leg someone hears gets all of its audio, from wherever it comes.

    Without socket filters a quiet leg is drained here instead, and one that
    stops being quiet (the moderator opened a questioner's line) has its
    backlog counted, not played: up to one sweep of audio from before the
    line opened would otherwise sit in its jitter buffer as delay for the
    whole question. Keys in the backlog still count.
    """
    for leg, rtp in legs:
        quiet = leg.quiet
        if quiet and rtp.sample_audio(leg.audio_payload_type):
            rtp.attend(True)
            if rtp.peer is None:
                recent = now - leg.last_rx < LATCH_SILENCE
                if recent and leg.last_source == leg.remote and rtp.latch(leg.remote):
                    leg.route_changed()
            elif (rtp.peer != leg.remote or now - leg.last_rx > LATCH_SILENCE) and rtp.latch(None):
                leg.route_changed()
            continue
        if not quiet:
            rtp.sample_audio(None)
            # Someone hears this caller: hear them from wherever they send.
            if rtp.latch(None):
                leg.route_changed()
        if quiet or not rtp.attentive:
            leg.heard(rtp.drain(leg.audio_payload_type, leg.peer_host), now)
        rtp.attend(not quiet)
