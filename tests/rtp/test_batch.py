from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.batch import HEADER_SIZE, RtpBatch
from callbridge.rtp.packet import RtpPacket
from callbridge.rtp.stream import RtpSender


def rows_of(batch: RtpBatch, rows: np.ndarray) -> list[RtpPacket]:
    return [
        RtpPacket.parse(batch.buffer[row, : batch.lengths[row]].tobytes()) for row in rows.tolist()
    ]


def test_a_batch_builds_what_each_sender_would_have_sent() -> None:
    senders = [
        RtpSender(0, ssrc=0x1000 + i, sequence_number=65534, timestamp=2**32 - 160)
        for i in range(3)
    ]
    twins = [
        RtpSender(0, ssrc=0x1000 + i, sequence_number=65534, timestamp=2**32 - 160)
        for i in range(3)
    ]
    batch = RtpBatch(senders, [0, 0, 0])
    sending = np.ones(3, dtype=bool)
    for frame in range(4):
        payload = bytes([frame]) * 160
        rows = batch.build([payload], sending)
        built = [batch.buffer[r, : batch.lengths[r]].tobytes() for r in rows.tolist()]
        assert built == [twin.frame(payload) for twin in twins]
    # Marker on the first packet only; numbering wrapped at 16 and 32 bits.
    packets = rows_of(batch, rows)
    assert [p.sequence_number for p in packets] == [1, 1, 1]
    assert not any(p.marker for p in packets)


def test_numbering_goes_back_to_the_sender_when_a_stream_leaves() -> None:
    sender = RtpSender(0, ssrc=7, sequence_number=100, timestamp=8000)
    sender.next_packet(b"\xff" * 160)  # a prompt before the call: marker spent
    batch = RtpBatch([sender], [0])
    for _ in range(5):
        batch.build([b"\xff" * 160], np.ones(1, dtype=bool))
    batch.store(0, sender)
    after = RtpPacket.parse(sender.next_packet(b"\xff" * 160))
    assert (after.sequence_number, after.timestamp, after.marker) == (106, 8000 + 6 * 160, False)
    assert sender.packets_sent == 7
    assert sender.octets_sent == 7 * 160


def test_a_held_stream_lets_time_pass_without_sending() -> None:
    sender = RtpSender(0, ssrc=1, sequence_number=10, timestamp=0)
    batch = RtpBatch([sender, RtpSender(0, ssrc=2)], [0, 0])
    held = np.array([False, True])
    rows = batch.build([b"\x01" * 160], held)
    assert rows.tolist() == [1]
    batch.build([b"\x01" * 160], np.ones(2, dtype=bool))
    first = rows_of(batch, np.array([0]))[0]
    # One frame of hold: the sequence number did not move, the timestamp did.
    assert (first.sequence_number, first.timestamp) == (10, 160)


def test_codecs_and_a_payload_of_its_own() -> None:
    senders = [RtpSender(0, ssrc=1), RtpSender(8, ssrc=2), RtpSender(0, ssrc=3)]
    batch = RtpBatch(senders, [0, 1, 0])
    rows = batch.build([b"U" * 160, b"A" * 160], np.ones(3, dtype=bool), own={2: b"W" * 160})
    packets = rows_of(batch, rows)
    assert [(p.payload_type, p.payload[:1]) for p in packets] == [(0, b"U"), (8, b"A"), (0, b"W")]


def test_a_larger_payload_grows_the_rows() -> None:
    batch = RtpBatch([RtpSender(0, ssrc=1)], [0])
    buffer = batch.buffer
    rows = batch.build([b"x" * 320], np.ones(1, dtype=bool))
    assert batch.buffer is not buffer  # whoever sends the rows must look again
    assert batch.lengths[rows[0]] == HEADER_SIZE + 320
    assert rows_of(batch, rows)[0].payload == b"x" * 320


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.lists(st.booleans(), min_size=8, max_size=8), min_size=1, max_size=20),
)
def test_every_stream_stays_continuous_whatever_is_held(
    starts: list[tuple[int, int, bool]], holds: list[list[bool]]
) -> None:
    senders = [
        RtpSender(0, ssrc=i, sequence_number=s, timestamp=t) for i, (s, t, _) in enumerate(starts)
    ]
    for sender, (_, _, sent_before) in zip(senders, starts, strict=True):
        if sent_before:
            sender.next_packet(b"\xff" * 160)
    expected = [(s.sequence_number, s.timestamp) for s in senders]
    batch = RtpBatch(senders, [0] * len(senders))
    for hold in holds:
        sending = ~np.array(hold[: len(senders)], dtype=bool)
        rows = batch.build([b"\xff" * 160], sending)
        for row, packet in zip(rows.tolist(), rows_of(batch, rows), strict=True):
            assert (packet.sequence_number, packet.timestamp) == expected[row]
        for row in range(len(senders)):
            seq, ts = expected[row]
            expected[row] = ((seq + int(sending[row])) % 65536, (ts + 160) % 2**32)
    for row, sender in enumerate(senders):
        batch.store(row, sender)
        assert (sender.sequence_number, sender.timestamp) == expected[row]


def test_streams_added_later_keep_the_rows_before_them() -> None:
    batch = RtpBatch([RtpSender(0, ssrc=1, sequence_number=5, timestamp=0)], [0])
    batch.build([b"a" * 160], np.ones(1, dtype=bool))
    batch.extend([RtpSender(8, ssrc=2, sequence_number=70, timestamp=0)], [1])
    rows = batch.build([b"u" * 160, b"x" * 160], np.ones(2, dtype=bool))
    first, second = rows_of(batch, rows)
    assert (first.ssrc, first.sequence_number, first.timestamp, first.marker) == (1, 6, 160, False)
    assert (second.ssrc, second.sequence_number, second.payload_type, second.marker) == (
        2,
        70,
        8,
        True,
    )
    assert second.payload == b"x" * 160
