"""An edge's conference: its listeners hear the origin's mix as each frame arrives.

The edge mixes nothing. Its clock still ticks every 20 ms, but only to play
hold music to callers who wait for the call to start and to send the audio
of its callers who may talk (a speaker, an open line) up to the origin
(``uplink``). The mix for its listeners comes from the origin (``relay_mix``)
and goes out at once, in one batch, through the same encode-once path as a
mix made here (``Conference._send_same``): waiting for the next tick would
add up to 20 ms. A caller who may talk hears the origin's mix without their
own voice (``relay_line``), sent to them alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callbridge.media.conference import Conference, Participant
from callbridge.media.mixer import Pcm
from callbridge.rtp.g711 import ulaw_decode


class RelayedConference(Conference):
    """``Conference``, with the mix relayed from the origin instead of made here."""

    def __init__(
        self, *args: Any, uplink: Callable[[Participant, Pcm], None], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.uplink = uplink

    def tick(self, now: float, frame_index: int | None = None) -> None:
        self.stats.ticks += 1
        roster = self.roster()
        if roster.held:
            self._send_same(
                "held", roster.held, roster.held_legs, roster.held_codecs, self._hold_frame(), now
            )
        for participant in roster.talkers:
            frame = participant.leg.pull_frame(now)
            if frame is not None:
                self.uplink(participant, frame)

    def relay_mix(self, payload: bytes, now: float) -> int:
        """One PCMU frame of the origin's mix, to every listener here; returns how many."""
        roster = self.roster()
        if not roster.audience:
            return 0
        before = self.stats.frames_sent
        self._send_same(
            "audience",
            roster.audience,
            roster.audience_legs,
            roster.audience_codecs,
            ulaw_decode(payload),
            now,
            encoded={"PCMU": payload},
        )
        return self.stats.frames_sent - before

    def relay_line(self, participant_id: str, payload: bytes, now: float) -> None:
        """One PCMU frame of what the origin sends one caller who may talk (the mix less them)."""
        participant = self.participants.get(participant_id)
        if participant is None or participant not in self.roster().talkers:
            return
        if participant.leg.codec_name == "PCMU" and participant_id not in self._whispers:
            participant.leg.send_payload(payload, now)
            self.stats.frames_sent += 1
            return
        self._send_one(participant, ulaw_decode(payload), now)
