"""The origin's feed: the mix once per edge per tick, whatever the edges' listener counts."""

from __future__ import annotations

import numpy as np

from callbridge.cascade.feed import (
    SUBSCRIPTION_TTL,
    MediaPort,
    MixFeed,
    RemoteLeg,
    line_ssrc,
    mix_ssrc,
    parse_frame,
)
from callbridge.rtp.g711 import ulaw_decode


class Port:
    """What the feed sends, instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def send(self, packet: bytes, target: tuple[str, int]) -> None:
        self.sent.append((packet, target))


def test_one_packet_per_edge_per_tick_and_silent_edges_are_dropped() -> None:
    port, now = Port(), [0.0]
    # The wall clock at 0.02 s when the first frame goes: frame 1 of the 20 ms grid.
    feed = MixFeed(7, port, lambda: now[0], wall=lambda: 0.02 + now[0])  # type: ignore[arg-type]
    feed.push(0, np.zeros(160, np.int16))
    assert port.sent == []  # nobody subscribed: nothing is encoded or sent
    feed.subscribe("edge-a", ("10.0.0.3", 40000), 0.0)
    feed.subscribe("edge-b", ("10.0.0.4", 40000), 0.0)
    tone = (8000 * np.sin(np.arange(160) / 3)).astype(np.int16)
    feed.push(1, tone)
    assert sorted(target for _, target in port.sent) == [("10.0.0.3", 40000), ("10.0.0.4", 40000)]
    frame = parse_frame(port.sent[0][0])
    assert frame is not None and frame[0] == mix_ssrc(7) and frame[1] == 1
    assert np.abs(ulaw_decode(frame[2]).astype(int) - tone).max() < 300
    # edge-b stops asking: after SUBSCRIPTION_TTL it is sent nothing more.
    now[0] = SUBSCRIPTION_TTL + 0.5
    feed.subscribe("edge-a", ("10.0.0.3", 40000), now[0])
    port.sent.clear()
    feed.push(2, tone)
    assert [target for _, target in port.sent] == [("10.0.0.3", 40000)]


def test_frames_that_are_not_pcmu_of_20_ms_are_refused() -> None:
    assert parse_frame(b"") is None
    assert parse_frame(bytes([0x80, 8]) + bytes(10) + bytes(160)) is None  # PCMA
    assert parse_frame(bytes([0x80, 0]) + bytes(10) + bytes(80)) is None  # 10 ms
    assert parse_frame(bytes([0x90, 0]) + bytes(10) + bytes(160)) is None  # an extension


def test_a_remote_leg_keeps_a_few_frames_and_answers_on_its_own_stream() -> None:
    port = Port()
    leg = RemoteLeg("p7-1@edge-a", port, lambda: ("10.0.0.3", 40000))  # type: ignore[arg-type]
    for n in range(10):
        leg.receive(bytes([n]) * 160)
    assert len(leg.frames) == 5  # the oldest went
    assert leg.pull_frame(0.0) is not None
    leg.send_payload(b"\xff" * 160, 0.0)
    frame = parse_frame(port.sent[0][0])
    assert frame is not None and frame[0] == line_ssrc("p7-1@edge-a")


def test_the_media_port_hears_only_trusted_hosts() -> None:
    heard: list[int] = []
    port = MediaPort(lambda ssrc, payload, src, now: heard.append(ssrc), "10.0.0.2".__eq__, float)
    packet = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]) + bytes(160)
    port.datagram_received(packet, ("10.0.0.9", 5000))
    port.datagram_received(b"junk", ("10.0.0.2", 5000))
    port.datagram_received(packet, ("10.0.0.2", 5000))
    assert heard == [9]
    assert (port.stats.foreign, port.stats.malformed, port.stats.received) == (1, 1, 1)


def _frame(seq: int, ssrc: int = 9) -> bytes:
    header = bytes([0x80, 0]) + seq.to_bytes(2, "big") + bytes(4) + ssrc.to_bytes(4, "big")
    return header + bytes(160)


def test_late_and_repeated_frames_are_dropped_and_a_restarted_stream_is_heard() -> None:
    heard: list[int] = []
    port = MediaPort(lambda ssrc, payload, src, now: heard.append(ssrc), bool, float)
    source = ("10.0.0.2", 5000)
    for seq in (65534, 65535, 0, 0, 65535, 1, 3, 2):  # across the wrap, one repeat, two late
        port.datagram_received(_frame(seq), source)
    assert port.stats.received == 5 and port.stats.late == 3
    port.datagram_received(_frame(7, ssrc=10), source)  # another stream: its own numbering
    port.datagram_received(_frame(1000), source)  # far behind or ahead: a new start
    assert heard == [9] * 5 + [10, 9]


def test_two_origins_number_the_same_moment_alike_on_the_wall_clock_grid() -> None:
    """An active and a standby origin, their ticks out of phase and counted from different
    starts, give one moment one number; jitter does not renumber, a stall does."""
    wall = [1_000_000.004]
    active = MixFeed(7, Port(), lambda: 0.0, wall=lambda: wall[0])  # type: ignore[arg-type]
    standby = MixFeed(7, Port(), lambda: 0.0, wall=lambda: wall[0] + 0.005)  # type: ignore[arg-type]
    assert active.number(12) == standby.number(90_001) == 50_000_000
    wall[0] += 0.020 * 10 + 0.008  # ten ticks later, late by 8 ms
    assert active.number(22) == 50_000_010
    wall[0] += 0.020 * 100  # a stall of 100 frames the ticks did not count
    assert active.number(23) == 50_000_111
