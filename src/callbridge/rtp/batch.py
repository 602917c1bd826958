"""The next packet of many outgoing RTP streams at once, built in numpy.

Every listener of a conference gets the same 20 ms payload; only the header
differs (sequence number, timestamp, SSRC, and the marker bit on a stream's
first packet). Building a thousand of those one ``bytes`` object at a time
was most of the bridge's Python per tick. An ``RtpBatch`` takes over the
numbering of a set of ``RtpSender``s (``load``), writes every header and
payload of a frame into one buffer with a few array operations (``build``)
and hands the numbering back when a stream leaves the batch (``store``), so
a leg's stream stays continuous whoever builds its packets.

Sans-IO: the rows of ``buffer`` are what goes on the wire; sending them is
the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from callbridge.rtp.packet import RTP_VERSION
from callbridge.rtp.seq import SEQ_MOD, TS_MOD
from callbridge.rtp.stream import RtpSender

HEADER_SIZE = 12
# Room after each row's packet for an SRTP trailer (the 10-byte tag of
# AES_CM_128_HMAC_SHA1_80), written in place by whoever protects the row.
TRAILER_ROOM = 16
# 20 ms of G.711 at 8 kHz; a larger payload grows the buffer.
DEFAULT_PAYLOAD = 160

Rows = npt.NDArray[np.intp]


class RtpBatch:
    """Sequence numbers, timestamps and packets of ``len(self)`` streams.

    ``codecs[i]`` says which of the payloads given to ``build`` stream ``i``
    carries (one encode per codec, as the conference does).
    """

    def __init__(self, senders: Sequence[RtpSender], codecs: Sequence[int]) -> None:
        if len(senders) != len(codecs):
            raise ValueError("one codec index per sender")
        count = len(senders)
        self.seq = np.array([s.sequence_number for s in senders], dtype=np.int64)
        self.ts = np.array([s.timestamp for s in senders], dtype=np.int64)
        self.first = np.array([s.first for s in senders], dtype=bool)
        self.packets = np.zeros(count, dtype=np.int64)
        self.octets = np.zeros(count, dtype=np.int64)
        self.codecs = np.asarray(codecs, dtype=np.intp).reshape(count)
        self.samples = np.array([s.samples_per_frame for s in senders], dtype=np.int64)
        self._payload_type = np.array([s.payload_type for s in senders], dtype=np.uint8)
        self._ssrc = np.array([s.ssrc for s in senders], dtype=np.uint32)
        self.lengths = np.zeros(count, dtype=np.uint32)
        self.buffer = np.zeros((0, 0), dtype=np.uint8)
        self._allocate(DEFAULT_PAYLOAD)

    def __len__(self) -> int:
        return len(self.seq)

    def extend(self, senders: Sequence[RtpSender], codecs: Sequence[int]) -> None:
        """Take over the numbering of more streams, as rows ``len(self)`` onwards.

        The buffer is laid out again (``buffer`` moves).
        """
        more = RtpBatch(senders, codecs)
        for name in (
            "seq",
            "ts",
            "first",
            "packets",
            "octets",
            "codecs",
            "samples",
            "_payload_type",
            "_ssrc",
            "lengths",
        ):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(more, name)]))
        self._allocate(max(self.payload_size, DEFAULT_PAYLOAD))

    def _allocate(self, payload_size: int) -> None:
        count = len(self.seq)
        self.buffer = np.zeros((count, HEADER_SIZE + payload_size + TRAILER_ROOM), dtype=np.uint8)
        self.buffer[:, 0] = RTP_VERSION << 6
        self.buffer[:, 1] = self._payload_type
        self.buffer[:, 8:12] = self._ssrc.astype(">u4").view(np.uint8).reshape(count, 4)
        # Views into every row's header, written once per frame.
        self._seq_field = self.buffer[:, 2:4].view(">u2")[:, 0]
        self._ts_field = self.buffer[:, 4:8].view(">u4")[:, 0]

    @property
    def payload_size(self) -> int:
        """The largest payload a row holds; ``build`` grows it (and ``buffer`` moves)."""
        return int(self.buffer.shape[1]) - HEADER_SIZE - TRAILER_ROOM

    def build(
        self,
        payloads: Sequence[bytes],
        sending: npt.NDArray[np.bool_],
        own: Mapping[int, bytes] | None = None,
    ) -> Rows:
        """Write this frame's packet into the row of every stream that is ``sending``.

        ``payloads[codecs[i]]`` goes to stream ``i`` unless ``own`` gives
        that row a payload of its own (a prompt spoken over the call to one
        caller). A stream that is not sending (its caller put the call on
        hold) lets the frame's time pass: its timestamp advances, its
        sequence number does not. Returns the rows to send, in order;
        ``lengths`` holds their packet sizes.
        """
        own = own or {}
        largest = max([len(p) for p in payloads] + [len(p) for p in own.values()] + [0])
        if largest > self.payload_size:
            self._allocate(largest)
        rows = np.flatnonzero(sending)
        # Every stream sending (the usual frame): slices, not gathers.
        sel: slice | Rows = slice(None) if len(rows) == len(self) else rows
        if len(rows):
            self._seq_field[sel] = self.seq[sel]
            self._ts_field[sel] = self.ts[sel]
            second = self._payload_type[sel] | (self.first[sel].astype(np.uint8) << 7)
            self.buffer[sel, 1] = second
            codecs = self.codecs[sel]
            sizes = np.zeros(max(len(payloads), 1), dtype=np.uint32)
            for index, payload in enumerate(payloads):
                sizes[index] = len(payload)
                data = np.frombuffer(payload, dtype=np.uint8)
                if len(payloads) == 1:
                    self.buffer[sel, HEADER_SIZE : HEADER_SIZE + len(data)] = data
                else:
                    chosen = rows[codecs == index]
                    self.buffer[chosen, HEADER_SIZE : HEADER_SIZE + len(data)] = data
            self.lengths[sel] = HEADER_SIZE + sizes[codecs]
            for row, payload in own.items():
                if sending[row]:
                    self.buffer[row, HEADER_SIZE : HEADER_SIZE + len(payload)] = np.frombuffer(
                        payload, dtype=np.uint8
                    )
                    self.lengths[row] = HEADER_SIZE + len(payload)
            self.first[sel] = False
            self.seq[sel] = (self.seq[sel] + 1) % SEQ_MOD
            self.packets[sel] += 1
            self.octets[sel] += self.lengths[sel] - HEADER_SIZE
        self.ts += self.samples
        self.ts %= TS_MOD
        return rows

    def store(self, row: int, sender: RtpSender) -> None:
        """Hand stream ``row``'s numbering back to its sender (it leaves the batch)."""
        sender.take_over(
            sequence_number=int(self.seq[row]),
            timestamp=int(self.ts[row]),
            first=bool(self.first[row]),
            packets=int(self.packets[row]),
            octets=int(self.octets[row]),
        )
        # Counted once: what the sender now holds is no longer ours to add.
        self.packets[row] = 0
        self.octets[row] = 0
