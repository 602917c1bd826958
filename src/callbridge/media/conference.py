"""One event's conference: whose audio is mixed, and what each leg hears.

Who a caller is (their role, mute, name, place in the queue, whether they
are held) is the call controller's (``bridge.controller``): a participant
here is only what mixing needs: the leg, whether it may talk (the
controller says, ``set_may_talk``), whether it is talking, its whispers.

The conference is driven by its clock: every 20 ms ``tick`` pulls one frame
from each speaker who may talk, mixes, and hands every leg its audio. The
full mix for listeners is encoded once per codec and the same payload goes
to all of them; only the RTP header differs per leg (the leg's own sender
rewrites sequence number, timestamp and SSRC). Until the host starts the
call, everyone hears hold music instead.

The mix is 16 kHz (``media.mixer``); a frame of 8 kHz audio (hold music, a
whisper, a mix relayed over the cascade's narrowband link) goes to the
encoders as it is, since they take either rate (``rtp.codecs``). Encoders
have memory (G.722's predictor, Opus, the resampler of a G.711 one), so
each stream of frames has its own: one per codec for a group that hears
the same mix (encode once, fan out), one per talker for their own mix
(everyone but themself).

No sockets here: a leg is anything that satisfies ``ConferenceLeg``.

A cascade's origin lists the callers of its edges here too (``elsewhere``:
never sent the common mix) and taps the mix for them (``taps``); an edge's
``cascade.relayed.RelayedConference`` sends a mix it did not make through
``_send_same``.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from callbridge.dsp.resample import Resampler
from callbridge.media.mixer import FRAME_MS, SILENCE, Mixer, Pcm, limit

log = logging.getLogger(__name__)

MAX_PARTICIPANTS = 5000


class ConferenceState(enum.StrEnum):
    WAITING = "waiting"
    LIVE = "live"
    ENDED = "ended"


class ConferenceError(Exception):
    """An action the conference refuses in its present state."""


class ConferenceLeg(Protocol):
    """What the conference needs of a call leg."""

    codec_name: str

    def pull_frame(self, now: float) -> Pcm | None:
        """The caller's next 20 ms of audio, or None when there is none (silence, loss)."""

    def send_payload(self, payload: bytes, now: float) -> None:
        """Send one encoded 20 ms frame to the caller."""


class Encoder(Protocol):
    """One stream's encoder (``rtp.codecs.encoder``): a 20 ms frame at 8 or 16 kHz in."""

    def encode(self, pcm: Pcm) -> bytes: ...


# A new encoder for a codec, by its SDP name ("PCMU", "G722", "opus").
EncoderFactory = Callable[[str], Encoder]


class Audience(Protocol):
    """Sends one frame to many legs at once (``bridge.fanout.FanOut``).

    ``payloads`` holds the frame encoded once for each codec the legs use;
    ``own`` gives some legs a payload of their own this frame (a prompt
    spoken over the call to them alone). Returns how many frames went out.
    """

    def send(
        self,
        legs: Sequence[ConferenceLeg],
        payloads: Mapping[str, bytes],
        own: Mapping[ConferenceLeg, bytes],
        now: float,
    ) -> int: ...

    def close(self) -> None:
        """The conference is done with it: every leg's numbering goes back to the leg."""


@dataclass
class _Roster:
    """Who gets what, worked out again only when someone joins, leaves or changes role."""

    held: list[Participant]
    talkers: list[Participant]  # connected, may talk: mixed, and hear all but themself
    audience: list[Participant]  # connected, cannot talk: all hear the same full mix
    held_legs: list[ConferenceLeg]
    audience_legs: list[ConferenceLeg]
    held_codecs: list[str]
    audience_codecs: list[str]


class MixTap(Protocol):
    """Gets the full mix of every tick of a live call (the cascade's feed to its edges)."""

    def push(self, frame_index: int, pcm: Pcm) -> None: ...


class WebcastTap(Protocol):
    """The live webcast (``webcast.live.LiveWebcast``): the mix, and who was loud in it
    (participant ids), which its live captions name."""

    def push(self, frame_index: int, pcm: Pcm, talkers: frozenset[str] = frozenset()) -> None: ...


class Recorder(Protocol):
    """Where a live call's audio goes as it happens (``media.recording.CallRecorder``)."""

    def write_mix(self, frame_index: int, pcm: Pcm) -> None: ...

    def write_stem(self, participant_id: str, frame_index: int, pcm: Pcm) -> None: ...


@dataclass
class Participant:
    """A leg in the mix (who the caller is: ``bridge.controller.Member``, by the same id)."""

    id: str
    leg: ConferenceLeg
    may_talk: bool = False  # mixed, and hears all but themself; else hears the full mix
    talking: bool = False  # heard in the last tick's mix
    # A caller of another node of the cascade: mixed while they may talk (their
    # leg carries their audio both ways); never sent the common mix here.
    elsewhere: bool = False


@dataclass
class TickStats:
    ticks: int = 0
    frames_sent: int = 0
    encodes: int = 0


class Conference:
    """The participants of one event and the mix they hear."""

    def __init__(
        self,
        event_id: int,
        encoder: EncoderFactory,
        hold_music: Callable[[], Iterator[Pcm]] | None = None,
        max_participants: int = MAX_PARTICIPANTS,
        audience: Callable[[], Audience] | None = None,
    ) -> None:
        self.event_id = event_id
        self.encoder = encoder
        self.state = ConferenceState.WAITING
        self.participants: dict[str, Participant] = {}
        self.mixer = Mixer()
        self.max_participants = max_participants
        self.stats = TickStats()
        self.recorder: Recorder | None = None
        self.webcast: WebcastTap | None = None
        # Also get the full mix of every tick (the cascade's feeds to its edges).
        self.taps: list[MixTap] = []
        # Counts talk indicators flipping: the bridge tells the console when it moves.
        self.talk_changes = 0
        self._ids = itertools.count(1)
        self._hold_source = hold_music
        self._hold: Iterator[Pcm] | None = None
        self._whispers: dict[str, Iterator[Pcm]] = {}
        # (who hears the stream: a group or a participant id, codec) → its encoder.
        self._encoders: dict[tuple[str, str], Encoder] = {}
        # A whisper at another rate than the audio it is spoken over (an 8 kHz
        # prompt over the 16 kHz mix): its resampler, kept for the whole whisper.
        self._whisper_rates: dict[str, Resampler] = {}
        self._roster: _Roster | None = None
        # Without a factory every leg is sent its frame one by one.
        self._audience_factory = audience
        self._audiences: dict[str, Audience] = {}

    # -- membership -------------------------------------------------------

    def join(
        self,
        leg: ConferenceLeg,
        may_talk: bool,
        participant_id: str | None = None,
        elsewhere: bool = False,
    ) -> Participant:
        """Add a caller's leg; held until ``start`` if the call has not started.

        ``participant_id`` is the id the call controller gave them (``bridge.controller``);
        without one the conference numbers them itself.
        """
        if self.state is ConferenceState.ENDED:
            raise ConferenceError("the conference has ended")
        if len(self.participants) >= self.max_participants:
            raise ConferenceError("the conference is full")
        participant = Participant(
            id=participant_id or f"p{self.event_id}-{next(self._ids)}",
            leg=leg,
            may_talk=may_talk,
            elsewhere=elsewhere,
        )
        self.participants[participant.id] = participant
        self._roster = None
        return participant

    def leave(self, participant_id: str) -> None:
        if self.participants.pop(participant_id, None) is not None:
            self._roster = None
        self._whispers.pop(participant_id, None)
        self._whisper_rates.pop(participant_id, None)
        for key in [key for key in self._encoders if key[0] == participant_id]:
            del self._encoders[key]

    def active(self) -> list[Participant]:
        return list(self.participants.values())

    # -- control ----------------------------------------------------------

    def start(self) -> None:
        """The host opened the call: everyone held is connected."""
        if self.state is not ConferenceState.WAITING:
            raise ConferenceError(f"a {self.state} conference cannot start")
        self.state = ConferenceState.LIVE
        self._roster = None

    def end(self) -> list[Participant]:
        """End the call; returns the participants who were still in it."""
        if self.state is ConferenceState.ENDED:
            raise ConferenceError("the conference has ended already")
        remaining = self.active()
        self.state = ConferenceState.ENDED
        for participant in remaining:
            self.leave(participant.id)
        for audience in self._audiences.values():
            audience.close()
        self._audiences.clear()
        return remaining

    def set_may_talk(self, participant_id: str, may_talk: bool) -> Participant:
        """Mix the participant's audio (a speaker, an open line) or not (a listener, muted)."""
        participant = self.participants.get(participant_id)
        if participant is None:
            raise ConferenceError(f"{participant_id} is not on the call")
        participant.may_talk = may_talk
        participant.talking = participant.talking and may_talk
        self._roster = None
        return participant

    # -- media ------------------------------------------------------------

    def _hold_frame(self) -> Pcm:
        if self._hold_source is None:
            return SILENCE
        if self._hold is None:
            self._hold = self._hold_source()
        try:
            return next(self._hold)
        except StopIteration:
            self._hold = self._hold_source()
            return next(self._hold, SILENCE)

    def roster(self) -> _Roster:
        """Who is held, who talks, who listens; kept until the next change of membership or role.

        Change who may talk through the conference's methods: they are what
        tells it to work the roster out again.
        """
        roster = self._roster
        if roster is None:
            active = self.active()
            live = self.state is ConferenceState.LIVE
            held = [] if live else [p for p in active if not p.elsewhere]
            connected = active if live else []
            talkers = [p for p in connected if p.may_talk]
            audience = [p for p in connected if not p.may_talk and not p.elsewhere]
            roster = self._roster = _Roster(
                held=held,
                talkers=talkers,
                audience=audience,
                held_legs=[p.leg for p in held],
                audience_legs=[p.leg for p in audience],
                held_codecs=sorted({p.leg.codec_name for p in held}),
                audience_codecs=sorted({p.leg.codec_name for p in audience}),
            )
        return roster

    def tick(self, now: float, frame_index: int | None = None) -> None:
        """Mix and send one 20 ms frame to everyone; call it from the media clock.

        ``frame_index`` (the clock's tick number) places the frame in the
        recording, so a stalled tick leaves a gap rather than shifting time.
        """
        self.stats.ticks += 1
        roster = self.roster()
        if roster.held:
            self._send_same(
                "held", roster.held, roster.held_legs, roster.held_codecs, self._hold_frame(), now
            )
        if not roster.talkers and not roster.audience:
            # The webcast runs on through a silent stretch of a live call: its
            # listeners' players would stall on a gap.
            if frame_index is not None and self.state is ConferenceState.LIVE:
                if self.webcast is not None:
                    self.webcast.push(frame_index, SILENCE)
                for tap in self.taps:
                    tap.push(frame_index, SILENCE)
            return
        frames: dict[str, Pcm] = {}
        for participant in roster.talkers:
            # Only those who may talk are read: listeners and the muted cost nothing.
            frame = participant.leg.pull_frame(now)
            if frame is not None:
                frames[participant.id] = frame
        result = self.mixer.mix(frames)
        if self.webcast is not None and frame_index is not None:
            self.webcast.push(frame_index, result.full, result.talkers)
        if frame_index is not None:
            for tap in self.taps:
                tap.push(frame_index, result.full)
        if self.recorder is not None and frame_index is not None:
            self.recorder.write_mix(frame_index, result.full)
            for participant_id, frame in frames.items():
                self.recorder.write_stem(participant_id, frame_index, frame)
        for participant in roster.talkers:
            talking = participant.id in result.talkers
            if talking != participant.talking:
                participant.talking = talking
                self.talk_changes += 1
            # A talker who sent nothing this tick is not in the mix: they hear all of it.
            self._send_one(participant, result.minus.get(participant.id, result.full), now)
        if roster.audience:
            self._send_same(
                "audience",
                roster.audience,
                roster.audience_legs,
                roster.audience_codecs,
                result.full,
                now,
            )

    def whisper(self, participant_id: str, frames: Iterator[Pcm]) -> None:
        """Play ``frames`` to one participant only, over what the call sends them.

        A caller who has just joined hears the call at once, with "you are
        now joining" spoken over it, instead of waiting for the prompt first.
        """
        self._whispers[participant_id] = frames
        self._whisper_rates.pop(participant_id, None)

    def _overlay(self, participant: Participant, pcm: Pcm) -> Pcm | None:
        frames = self._whispers.get(participant.id)
        if frames is None:
            return None
        frame = next(frames, None)
        if frame is None:
            del self._whispers[participant.id]
            self._whisper_rates.pop(participant.id, None)
            return None
        if len(frame) != len(pcm):
            resampler = self._whisper_rates.get(participant.id)
            if resampler is None:
                rate_in, rate_out = (len(f) * 1000 // FRAME_MS for f in (frame, pcm))
                resampler = self._whisper_rates[participant.id] = Resampler(rate_in, rate_out)
            frame = resampler.process(frame)
        return limit(pcm.astype(np.int32) + frame.astype(np.int32))

    def _encode(self, stream: str, codec: str, pcm: Pcm) -> bytes:
        """``pcm`` as the next frame of ``stream``'s audio in ``codec``."""
        encoder = self._encoders.get((stream, codec))
        if encoder is None:
            encoder = self._encoders[(stream, codec)] = self.encoder(codec)
        self.stats.encodes += 1
        return encoder.encode(pcm)

    def _send_one(self, participant: Participant, pcm: Pcm, now: float) -> None:
        overlaid = self._overlay(participant, pcm) if self._whispers else None
        if overlaid is not None:
            pcm = overlaid
        payload = self._encode(participant.id, participant.leg.codec_name, pcm)
        participant.leg.send_payload(payload, now)
        self.stats.frames_sent += 1

    def _send_same(
        self,
        group: str,
        participants: list[Participant],
        legs: list[ConferenceLeg],
        codecs: list[str],
        pcm: Pcm,
        now: float,
        encoded: Mapping[str, bytes] | None = None,
    ) -> None:
        """One encode per codec, the same payload to every leg of ``group``.

        ``encoded`` gives payloads already encoded (a frame relayed as it came).
        """
        pcm = np.asarray(pcm, dtype=np.int16)
        payloads = dict(encoded or {})
        for codec in codecs:
            if codec not in payloads:
                payloads[codec] = self._encode(group, codec, pcm)
        own: dict[ConferenceLeg, bytes] = {}
        if self._whispers:
            for participant in participants:
                if participant.id in self._whispers:
                    overlaid = self._overlay(participant, pcm)
                    if overlaid is not None:
                        own[participant.leg] = self._encode(
                            participant.id, participant.leg.codec_name, overlaid
                        )
        if self._audience_factory is not None:
            audience = self._audiences.get(group)
            if audience is None:
                audience = self._audiences[group] = self._audience_factory()
            try:
                self.stats.frames_sent += audience.send(legs, payloads, own, now)
                return
            except Exception:
                # Nobody may go without the call for a fault in the fast path:
                # this conference sends leg by leg from now on.
                log.exception(
                    "event %d: the batched send failed; sending leg by leg", self.event_id
                )
                self._audience_factory = None
                for broken in self._audiences.values():
                    with contextlib.suppress(Exception):
                        broken.close()
                self._audiences.clear()
        for leg in legs:
            leg.send_payload(own.get(leg) or payloads[leg.codec_name], now)
        self.stats.frames_sent += len(legs)
