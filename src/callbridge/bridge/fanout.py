"""The conference's frame to many legs at once: one batch of packets, one submission.

``FanOut`` is the bridge's ``media.conference.Audience``: the conference
hands it the legs who hear the same mix and the mix encoded once per codec;
it builds every leg's packet in one ``rtp.batch.RtpBatch`` and sends the
rows, each from the leg's own socket, through a ``batch_send`` sender
(io_uring where the kernel allows it).

Membership follows the conference's list of legs: a leg that joins gets a
new row at the end, one that leaves leaves a dead row behind (not sent),
and the rows are laid out afresh only when a quarter of them are dead or a
codec appears that the batch has no payload for: a thousand listeners
joining one by one must not cost a thousand rebuilds.

An SRTP leg is a row like any other: its packet is built with the rest,
then protected in place under the leg's own key (``CallLeg.srtp``; the
row has room for the tag) before the one submission: the mix is still
encoded once, and only the protection is per leg.

A leg's RTP numbering lives in the batch while the leg is a member, and in
the leg's own ``RtpSender`` otherwise: a leg that sends anything by itself
(its line opened, a farewell prompt, a re-INVITE) is released first, and
its numbering goes back to it. Membership is worked out again only when the
conference's list of legs changes (it keeps the same list object until
someone joins, leaves or changes role).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from callbridge.bridge.batch_send import BatchSender, BatchTarget, sockaddr
from callbridge.bridge.leg import CallLeg
from callbridge.media.conference import ConferenceLeg
from callbridge.rtp.batch import RtpBatch

log = logging.getLogger(__name__)


class FanOut:
    """One group of legs that hear the same frame."""

    def __init__(self, sender: BatchSender) -> None:
        self.sender = sender
        self.dropped = 0
        self._legs: list[CallLeg] = []  # the batch's rows, in order
        self._rows: dict[CallLeg, int] = {}
        self._others: list[ConferenceLeg] = []  # sent to one by one
        self._synced: Sequence[ConferenceLeg] | None = None
        self._stale = True
        self._batch: RtpBatch | None = None
        self._target: BatchTarget | None = None
        self._target_buffer: object = None
        self._codecs: list[str] = []
        self._codec_index: dict[str, int] = {}
        self._sending = np.zeros(0, dtype=bool)
        self._dead = 0  # rows of legs that left
        self._secure: list[tuple[int, CallLeg]] = []  # the rows of SRTP legs

    def __len__(self) -> int:
        return len(self._rows)

    # -- Audience --------------------------------------------------------------------------

    def send(
        self,
        legs: Sequence[ConferenceLeg],
        payloads: Mapping[str, bytes],
        own: Mapping[ConferenceLeg, bytes],
        now: float,
    ) -> int:
        if legs is not self._synced or self._stale:
            self._sync(legs)
        sent = 0
        batch = self._batch
        if batch is not None and len(batch):
            rows_own = {
                self._rows[leg]: payload for leg, payload in own.items() if leg in self._rows
            }
            # A codec only dead rows still use has no payload this frame: nobody sends it.
            frame = [payloads.get(codec, b"") for codec in self._codecs]
            rows = batch.build(frame, self._sending, rows_own)
            if self._secure:
                self._protect(batch)
            if self._target is None or self._target_buffer is not batch.buffer:
                self._retarget()
            assert self._target is not None
            failed = self._target.send(rows, batch.lengths)
            sent = len(rows) - len(failed)
            if len(failed):
                self.dropped += len(failed)
                for row in failed.tolist():
                    rtp = self._legs[row].rtp
                    if rtp is not None:
                        rtp.dropped += 1
        for leg in self._others:
            leg.send_payload(own.get(leg) or payloads[leg.codec_name], now)
            sent += 1
        return sent

    def _protect(self, batch: RtpBatch) -> None:
        """Protect the SRTP rows in place, each under its leg's key.

        Plain Python on a flat view of the buffer: a numpy call per row cost
        more than libsrtp's own work (bench/srtp_bench.py).
        """
        width = batch.buffer.shape[1]
        flat = batch.buffer.data.cast("B")
        lengths = batch.lengths.tolist()
        sending = self._sending.tolist()
        rows: list[int] = []
        sizes: list[int] = []
        for row, leg in self._secure:
            srtp = leg.srtp
            if not sending[row] or srtp is None:
                continue  # a dead row (it left), or a held one
            start = row * width
            protected = srtp.protect(bytes(flat[start : start + lengths[row]]))
            # The suites we answer add 4 or 10 bytes: within the row's TRAILER_ROOM.
            flat[start : start + len(protected)] = protected
            rows.append(row)
            sizes.append(len(protected))
        if rows:
            batch.lengths[rows] = sizes

    def retarget(self) -> None:
        """A member's socket was latched or let go: prepare the sends again before the next."""
        self._target_buffer = None

    def close(self) -> None:
        self._store_all()
        self._synced = None
        self._stale = True

    # -- membership ------------------------------------------------------------------------

    def release(self, leg: CallLeg) -> None:
        """``leg`` sends by itself from now on: its numbering goes back to it."""
        row = self._rows.pop(leg, None)
        if row is None or self._batch is None:
            return
        leg.stats.packets_out += int(self._batch.packets[row])
        self._batch.store(row, leg.sender)
        leg.fanout = None
        self._sending[row] = False
        self._dead += 1
        self._stale = True

    def _store_all(self) -> None:
        self._secure = []
        for leg in list(self._rows):
            self.release(leg)
        if self._target is not None:
            self._target.close()
        self._target = None
        self._batch = None
        self._legs = []

    def _sync(self, legs: Sequence[ConferenceLeg]) -> None:
        """Follow the list: release who left, append who joined."""
        batch = self._batch
        if batch is None or self._dead > max(16, len(batch) // 4):
            self._rebuild(legs)
            return
        wanted = set(legs)
        for gone in [leg for leg in self._rows if leg not in wanted]:
            self.release(gone)
        added: list[CallLeg] = []
        others: list[ConferenceLeg] = []
        for leg in legs:
            if leg in self._rows:
                continue
            if isinstance(leg, CallLeg) and _batchable(leg):
                if leg.codec_name not in self._codec_index:
                    self._rebuild(legs)
                    return
                added.append(leg)
            else:
                others.append(leg)
        if added:
            for leg in added:
                if leg.fanout is not None:
                    leg.fanout.release(leg)
            first = len(batch)
            batch.extend(
                [leg.sender for leg in added], [self._codec_index[leg.codec_name] for leg in added]
            )
            for offset, leg in enumerate(added):
                self._rows[leg] = first + offset
                leg.fanout = self
                if leg.srtp is not None:
                    self._secure.append((first + offset, leg))
            self._legs.extend(added)
            self._sending = np.concatenate(
                [self._sending, np.array([not leg.on_hold for leg in added], dtype=bool)]
            )
        self._others = others
        self._synced = legs
        self._stale = False

    def _rebuild(self, legs: Sequence[ConferenceLeg]) -> None:
        """Lay the rows out afresh: one per batchable leg, in the list's order."""
        self._store_all()
        members: list[CallLeg] = []
        others: list[ConferenceLeg] = []
        for leg in legs:
            if isinstance(leg, CallLeg) and _batchable(leg):
                if leg.fanout is not None:
                    leg.fanout.release(leg)
                members.append(leg)
            else:
                others.append(leg)
        self._codecs = sorted({leg.codec_name for leg in members})
        index = self._codec_index = {codec: i for i, codec in enumerate(self._codecs)}
        self._batch = RtpBatch(
            [leg.sender for leg in members], [index[leg.codec_name] for leg in members]
        )
        self._legs = members
        self._rows = {leg: row for row, leg in enumerate(members)}
        self._secure = [(row, leg) for row, leg in enumerate(members) if leg.srtp is not None]
        for leg in members:
            leg.fanout = self
        self._sending = np.array([not leg.on_hold for leg in members], dtype=bool)
        self._others = others
        self._synced = legs
        self._stale = False
        self._dead = 0
        self._retarget()

    def _retarget(self) -> None:
        if self._target is not None:
            self._target.close()
        assert self._batch is not None
        # A dead row's socket may be closed (and its number reused): never sent, it gets none.
        sockets = [
            leg.rtp.sock if leg.rtp is not None and self._rows.get(leg) == row else None
            for row, leg in enumerate(self._legs)
        ]
        self._target = self.sender.target(
            sockets,
            [leg.remote for leg in self._legs],
            self._batch.buffer,
            [leg.rtp is not None and leg.rtp.peer == leg.remote for leg in self._legs],
        )
        self._target_buffer = self._batch.buffer


def _batchable(leg: CallLeg) -> bool:
    """A leg with a socket of its own and a far end given as an address."""
    if leg.rtp is None or leg.rtp.sock is None:
        return False
    try:
        sockaddr(*leg.remote)
    except (ValueError, OverflowError):
        return False
    return True
