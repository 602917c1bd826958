"""RTP sockets: batched reading of real UDP sockets, attentive and quiet legs."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from callbridge.bridge import rtp_transport
from callbridge.bridge.rtp_transport import (
    BATCH,
    DATAGRAM_MAX,
    BatchReader,
    RtpPortPool,
    RtpSocket,
    audio_sampler,
    sweep,
)
from callbridge.rtp.packet import RtpPacket

Address = tuple[str, int]


def rtp(payload_type: int, seq: int, size: int = 160) -> bytes:
    return RtpPacket(payload_type, seq, seq * 160, 0x1234, b"\xff" * size).serialize()


def pair(family: socket.AddressFamily = socket.AF_INET) -> tuple[socket.socket, socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.bind((host, 0))
    receiver.setblocking(False)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    sender.bind((host, 0))
    return receiver, sender


@pytest.fixture(params=["recvmmsg", "recvfrom"])
def reader(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BatchReader]:
    if request.param == "recvmmsg":
        if rtp_transport._recvmmsg is None:
            pytest.skip("recvmmsg is Linux only")
    else:
        monkeypatch.setattr(rtp_transport, "_recvmmsg", None)
    yield BatchReader()


def test_drain_reads_more_than_one_batch_and_counts_the_audio(reader: BatchReader) -> None:
    receiver, sender = pair()
    target = receiver.getsockname()
    audio = BATCH * 2 + 5
    for seq in range(audio):
        sender.sendto(rtp(0, seq), target)
    sender.sendto(rtp(101, 9999, size=4), target)  # a key, which must be read
    sender.sendto(b"\x81\xc8" + b"\x00" * 26, target)  # RTCP sender report
    got: list[tuple[bytes, Address]] = []
    counted = reader.drain(receiver, lambda data, addr: got.append((data, addr)), 0)
    assert counted == audio
    assert [data[1] for data, _ in got] == [101, 0xC8]
    assert RtpPacket.parse(got[0][0]).sequence_number == 9999
    assert all(addr == sender.getsockname() for _, addr in got)
    # Nothing is left: a second drain reads nothing.
    assert reader.drain(receiver, lambda data, addr: got.append((data, addr)), 0) == 0
    assert len(got) == 2


def test_drain_without_a_type_to_count_delivers_everything_in_order(reader: BatchReader) -> None:
    receiver, sender = pair()
    for seq in range(100):
        sender.sendto(rtp(8, seq), receiver.getsockname())
    got: list[bytes] = []
    assert reader.drain(receiver, lambda data, addr: got.append(data)) == 0
    assert [RtpPacket.parse(data).sequence_number for data in got] == list(range(100))


def test_short_and_oversized_datagrams(reader: BatchReader) -> None:
    receiver, sender = pair()
    sender.sendto(b"\x80\x00", receiver.getsockname())  # too short to carry a type: delivered
    sender.sendto(b"\x80\x00" + b"\x01" * 3000, receiver.getsockname())
    got: list[bytes] = []
    assert reader.drain(receiver, lambda data, addr: got.append(data), 0) == 1
    assert got == [b"\x80\x00"]
    sender.sendto(b"\x80\x08" + b"\x01" * 3000, receiver.getsockname())
    reader.drain(receiver, lambda data, addr: got.append(data), 0)
    assert len(got[1]) == DATAGRAM_MAX  # cut short, and the leg will count it bad


def test_ipv6_addresses_are_decoded(reader: BatchReader) -> None:
    try:
        receiver, sender = pair(socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    sender.sendto(rtp(101, 1), receiver.getsockname())
    got: list[Address] = []
    reader.drain(receiver, lambda data, addr: got.append(addr), 0)
    assert got == [sender.getsockname()[:2]]


def test_drain_stops_when_a_handler_closes_the_socket(reader: BatchReader) -> None:
    receiver, sender = pair()
    for seq in range(BATCH * 2):
        sender.sendto(rtp(101, seq), receiver.getsockname())
    got: list[bytes] = []

    def deliver(data: bytes, addr: Address) -> None:
        got.append(data)
        receiver.close()

    reader.drain(receiver, deliver)
    assert 1 <= len(got) <= BATCH


async def attentive_then_quiet() -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(42000, 42100)
    sock, port = pool.bind("127.0.0.1")
    arrived: list[tuple[bytes, float]] = []
    got = asyncio.Event()

    def handler(data: bytes, addr: Address, now: float) -> None:
        arrived.append((data, now))
        got.set()

    rtp_socket = RtpSocket(sock, handler, loop, BatchReader())
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert rtp_socket.attentive
        sender.sendto(rtp(0, 1), ("127.0.0.1", port))
        await asyncio.wait_for(got.wait(), 2)
        assert len(arrived) == 1

        rtp_socket.attend(False)
        for seq in range(2, 12):
            sender.sendto(rtp(0, seq), ("127.0.0.1", port))
        sender.sendto(rtp(101, 50, size=4), ("127.0.0.1", port))
        await asyncio.sleep(0.1)
        assert len(arrived) == 1  # nobody reads a quiet socket by itself
        assert rtp_socket.drain(0) == 10
        assert [RtpPacket.parse(data).sequence_number for data, _ in arrived] == [1, 50]

        # Sending to a vanished port is counted, not raised.
        rtp_socket.sendto(rtp(0, 1), ("127.0.0.1", 9))
        rtp_socket.close()
        rtp_socket.sendto(rtp(0, 2), ("127.0.0.1", port))
        assert rtp_socket.dropped >= 1
        assert rtp_socket.drain(0) == 0
        rtp_socket.attend(True)  # a closed socket stays unwatched
        assert not rtp_socket.attentive
    finally:
        sender.close()
        pool.release(port)


def test_attentive_socket_delivers_on_arrival_and_a_quiet_one_waits() -> None:
    asyncio.run(attentive_then_quiet())


@dataclass(eq=False)
class Leg:
    """What ``sweep`` needs of a leg, with what reached it."""

    quiet: bool
    audio_payload_type: int = 0
    counted: int = 0
    delivered: list[int] = field(default_factory=list)
    remote: Address = ("127.0.0.1", 9)
    peer_host: str = "127.0.0.1"
    last_source: Address | None = None
    last_rx: float = 0.0
    route_changes: int = 0

    def heard(self, packets: int, now: float) -> None:
        self.counted += packets

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        self.last_source, self.last_rx = addr, now
        self.delivered.append(RtpPacket.parse(data).sequence_number)

    def route_changed(self) -> None:
        self.route_changes += 1


async def quiet_then_open() -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(42200, 42300)
    sock, port = pool.bind("127.0.0.1")
    leg = Leg(quiet=True)
    rtp_socket = RtpSocket(sock, leg.receive, loop, BatchReader())
    rtp_socket.filters = False  # as where there are no socket filters
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    try:
        sweep([(leg, rtp_socket)], loop.time())
        assert not rtp_socket.attentive
        for seq in range(10):
            sender.sendto(rtp(0, seq), target)
        await asyncio.sleep(0.05)
        sweep([(leg, rtp_socket)], loop.time())
        assert (leg.counted, leg.delivered) == (10, [])

        # The line opens: what queued meanwhile is counted, a key in it still delivered.
        for seq in range(10, 15):
            sender.sendto(rtp(0, seq), target)
        sender.sendto(rtp(101, 15), target)
        await asyncio.sleep(0.05)
        leg.quiet = False
        sweep([(leg, rtp_socket)], loop.time())
        assert rtp_socket.attentive
        assert (leg.counted, leg.delivered) == (15, [15])
        sender.sendto(rtp(0, 16), target)
        await asyncio.sleep(0.05)
        assert leg.delivered == [15, 16]  # read by the loop now, as it arrives
    finally:
        rtp_socket.close()
        sender.close()
        pool.release(port)


def test_without_filters_sweep_counts_quiet_legs_and_drops_the_backlog_of_a_line_opened() -> None:
    asyncio.run(quiet_then_open())


async def filtered_then_open() -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(42400, 42500)
    sock, port = pool.bind("127.0.0.1")
    leg = Leg(quiet=True)
    rtp_socket = RtpSocket(sock, leg.receive, loop, BatchReader())
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    try:
        sweep([(leg, rtp_socket)], loop.time())
        # Watched by the loop: the kernel lets only a sample of the audio through.
        assert rtp_socket.attentive
        for seq in range(200):
            sender.sendto(rtp(0, seq), target)
        sender.sendto(rtp(101, 200), target)  # a key always passes
        sender.sendto(rtp(8, 201), target)  # as does a payload type not filtered
        await asyncio.sleep(0.05)
        assert leg.delivered == [0, 64, 128, 192, 200, 201]

        # The line opens: all of the caller's audio comes in again.
        leg.quiet = False
        sweep([(leg, rtp_socket)], loop.time())
        for seq in range(202, 206):
            sender.sendto(rtp(0, seq), target)
        await asyncio.sleep(0.05)
        assert leg.delivered[6:] == [202, 203, 204, 205]
    finally:
        rtp_socket.close()
        sender.close()
        pool.release(port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="socket filters are Linux's")
def test_quiet_legs_audio_is_sampled_by_a_socket_filter_and_let_in_when_the_line_opens() -> None:
    asyncio.run(filtered_then_open())


def test_audio_sampler_refuses_what_it_cannot_express() -> None:
    with pytest.raises(ValueError):
        audio_sampler(0, sample=48)
    with pytest.raises(ValueError):
        audio_sampler(128)


async def latch_and_let_go() -> None:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(42600, 42700)
    sock, port = pool.bind("127.0.0.1")
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    elsewhere = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere.bind(("127.0.0.1", 0))
    leg = Leg(quiet=True, remote=phone.getsockname())
    rtp_socket = RtpSocket(sock, leg.receive, loop, BatchReader())
    target = ("127.0.0.1", port)
    try:
        sweep([(leg, rtp_socket)], loop.time())
        assert rtp_socket.peer is None  # nothing seen from the caller yet
        phone.sendto(rtp(101, 1), target)
        await asyncio.sleep(0.05)
        sweep([(leg, rtp_socket)], loop.time())
        assert (rtp_socket.peer, leg.route_changes) == (phone.getsockname(), 1)
        # Latched: a stranger's datagrams no longer reach the leg; the caller's do.
        elsewhere.sendto(rtp(101, 2), target)
        phone.sendto(rtp(101, 3), target)
        await asyncio.sleep(0.05)
        assert leg.delivered == [1, 3]
        # Silence from the caller for LATCH_SILENCE: let go, hear from anywhere again.
        sweep([(leg, rtp_socket)], loop.time() + rtp_transport.LATCH_SILENCE + 1)
        assert (rtp_socket.peer, leg.route_changes) == (None, 2)
        elsewhere.sendto(rtp(101, 4), target)
        await asyncio.sleep(0.05)
        assert leg.delivered == [1, 3, 4]
        # A caller whose packets come from elsewhere than their SDP is never latched.
        sweep([(leg, rtp_socket)], loop.time())
        assert rtp_socket.peer is None
        # Someone hears a latched caller (their line opened): let go at once.
        phone.sendto(rtp(101, 5), target)
        await asyncio.sleep(0.05)
        sweep([(leg, rtp_socket)], loop.time())
        assert rtp_socket.peer == phone.getsockname()
        leg.quiet = False
        sweep([(leg, rtp_socket)], loop.time())
        assert rtp_socket.peer is None
    finally:
        rtp_socket.close()
        phone.close()
        elsewhere.close()
        pool.release(port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="socket filters are Linux's")
def test_a_quiet_leg_latches_onto_its_caller_and_lets_go_when_they_fall_silent() -> None:
    asyncio.run(latch_and_let_go())


def test_drain_counts_audio_only_from_the_peer_host(reader: BatchReader) -> None:
    receiver, sender = pair()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    try:
        for seq in range(BATCH + 3):
            sender.sendto(rtp(0, seq), receiver.getsockname())
            if seq % 8 == 0:
                stranger.sendto(rtp(0, seq), receiver.getsockname())
        got: list[Address] = []
        counted = reader.drain(receiver, lambda data, addr: got.append(addr), 0, "127.0.0.1")
        assert counted == BATCH + 3
        assert {addr[0] for addr in got} == {"127.0.0.2"}
        assert len(got) == (BATCH + 3 + 7) // 8
    finally:
        stranger.close()
        receiver.close()
        sender.close()


def test_ports_come_at_random_and_a_released_one_rests() -> None:
    pool = RtpPortPool(42800, 42898)  # fifty ports
    bound = [pool.bind("127.0.0.1") for _ in range(10)]
    ports = [port for _, port in bound]
    assert all(port % 2 == 0 and 42800 <= port <= 42898 for port in ports)
    assert len(set(ports)) == 10
    assert sorted(ports) != ports or max(ports) - min(ports) > 18  # not handed out in order
    for sock, port in bound:
        sock.close()
        pool.release(port)
    again = [pool.bind("127.0.0.1") for _ in range(30)]
    assert not {port for _, port in again[:5]} & set(ports[-pool._resting.maxlen :])  # type: ignore[operator]
    assert pool.in_use == 30
    for sock, port in again:
        sock.close()
        pool.release(port)


def test_every_port_of_the_range_can_be_had_and_then_none() -> None:
    pool = RtpPortPool(42900, 42918)  # ten ports
    bound = [pool.bind("127.0.0.1") for _ in range(10)]
    assert sorted(port for _, port in bound) == list(range(42900, 42919, 2))
    with pytest.raises(rtp_transport.PortRangeExhausted):
        pool.bind("127.0.0.1")
    sock, port = bound.pop()
    sock.close()
    pool.release(port)
    sock, again = pool.bind("127.0.0.1")
    assert again == port  # the only one free, resting or not
    sock.close()
    for sock, _ in bound:
        sock.close()


def test_a_handler_that_fails_on_a_flood_logs_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rtp_transport, "_failures", rtp_transport.Throttle(60.0, max_keys=1))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        receiver, sender = pair()
        calls: list[int] = []

        def broken(data: bytes, addr: Address, now: float) -> None:
            calls.append(1)
            raise RuntimeError("a bug")

        rtp_socket = RtpSocket(receiver, broken, loop, BatchReader())
        try:
            for seq in range(200):
                sender.sendto(rtp(0, seq), receiver.getsockname())
            for _ in range(50):
                await asyncio.sleep(0.01)
                if len(calls) == 200:
                    break
        finally:
            rtp_socket.close()
            sender.close()
        assert len(calls) == 200  # every datagram was handled, and the socket still read

    with caplog.at_level("ERROR", logger="callbridge.bridge.rtp_transport"):
        asyncio.run(run())
    failures = [r for r in caplog.records if "RTP handler failed" in r.getMessage()]
    assert len(failures) == 1
