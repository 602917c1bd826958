from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from callbridge.media.conference import (
    Conference,
    ConferenceError,
    ConferenceState,
)
from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from callbridge.rtp import codecs

NOW = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


class RecordingLeg:
    """A leg that talks a fixed frame and keeps what it was sent."""

    def __init__(self, codec: str = "PCMU", level: int = 0) -> None:
        self.codec_name = codec
        self.frame = np.full(FRAME_SAMPLES, level, dtype=np.int16) if level else None
        self.received: list[bytes] = []

    def pull_frame(self, now: float) -> Pcm | None:
        return self.frame

    def send_payload(self, payload: bytes, now: float) -> None:
        self.received.append(payload)


class Readable:
    """The test encoder keeps the codec and the first sample's value readable."""

    def __init__(self, codec: str) -> None:
        self.codec = codec

    def encode(self, pcm: Pcm) -> bytes:
        return self.codec.encode() + b":" + str(int(pcm[0])).encode()


encoder = Readable


def hold() -> Iterator[Pcm]:
    yield np.full(FRAME_SAMPLES, 7, dtype=np.int16)


def test_listeners_share_one_encode_per_codec() -> None:
    conf = Conference(1, encoder)
    conf.start()
    speaker = RecordingLeg(level=1000)
    conf.join(speaker, True)
    listeners = [RecordingLeg("PCMU") for _ in range(50)] + [RecordingLeg("PCMA") for _ in range(5)]
    for leg in listeners:
        conf.join(leg, False)
    conf.tick(0.0)
    # One encode for the speaker's N-1 mix, one per listener codec.
    assert conf.stats.encodes == 3
    assert all(leg.received == [b"PCMU:1000"] for leg in listeners[:50])
    assert all(leg.received == [b"PCMA:1000"] for leg in listeners[50:])
    # The lone speaker hears nobody, not themself.
    assert speaker.received == [b"PCMU:0"]


def test_speakers_hear_each_other_and_listeners_do_not_talk() -> None:
    conf = Conference(1, encoder)
    conf.start()
    a, b = RecordingLeg(level=100), RecordingLeg(level=200)
    noisy_listener = RecordingLeg(level=5000)
    conf.join(a, True)
    conf.join(b, True)
    conf.join(noisy_listener, False)
    conf.tick(0.0)
    assert a.received == [b"PCMU:200"]
    assert b.received == [b"PCMU:100"]
    assert noisy_listener.received == [b"PCMU:300"]


def test_muted_speaker_is_left_out_of_the_mix() -> None:
    conf = Conference(1, encoder)
    conf.start()
    a, b = RecordingLeg(level=100), RecordingLeg(level=200)
    pa = conf.join(a, True)
    conf.join(b, True)
    conf.set_may_talk(pa.id, False)  # muted
    conf.tick(0.0)
    assert b.received == [b"PCMU:0"]
    assert a.received == [b"PCMU:200"]


def test_early_callers_hear_hold_until_the_host_starts() -> None:
    conf = Conference(1, encoder, hold_music=hold)
    leg = RecordingLeg()
    conf.join(leg, False)
    conf.tick(0.0)
    assert leg.received == [b"PCMU:7"]
    conf.start()
    conf.tick(0.02)
    assert leg.received[-1] == b"PCMU:0"  # the call, silent so far


def test_end_and_transitions() -> None:
    conf = Conference(1, encoder)
    leg = RecordingLeg()
    conf.join(leg, False)
    conf.start()
    with pytest.raises(ConferenceError):
        conf.start()
    remaining = conf.end()
    assert len(remaining) == 1
    assert conf.state is ConferenceState.ENDED
    assert conf.active() == []
    with pytest.raises(ConferenceError):
        conf.join(RecordingLeg(), False)


def test_capacity_is_bounded() -> None:
    conf = Conference(1, encoder, max_participants=2)
    conf.join(RecordingLeg(), False)
    conf.join(RecordingLeg(), False)
    with pytest.raises(ConferenceError, match="full"):
        conf.join(RecordingLeg(), False)


def test_a_whisper_reaches_one_listener_over_the_call() -> None:
    conf = Conference(1, encoder)
    conf.start()
    conf.join(RecordingLeg(level=1000), True)
    whispered, other = RecordingLeg(), RecordingLeg()
    target = conf.join(whispered, False)
    conf.join(other, False)
    conf.whisper(target.id, iter([np.full(FRAME_SAMPLES, 5, dtype=np.int16)]))
    conf.tick(0.0)
    conf.tick(0.02)
    assert whispered.received == [b"PCMU:1005", b"PCMU:1000"]
    assert other.received == [b"PCMU:1000", b"PCMU:1000"]


def test_an_open_line_is_mixed_until_it_is_closed() -> None:
    conf = Conference(1, encoder)
    conf.start()
    ceo = conf.join(RecordingLeg(level=100), True)
    analyst_leg = RecordingLeg(level=300)
    analyst = conf.join(analyst_leg, False)
    conf.tick(0.0)
    assert analyst_leg.received[-1] == b"PCMU:100"  # a listener is not heard
    conf.set_may_talk(analyst.id, True)  # the moderator opened their line
    conf.tick(0.02)
    assert analyst_leg.received[-1] == b"PCMU:100"  # N-1: the analyst hears the CEO
    assert ceo.leg.received[-1] == b"PCMU:300"  # type: ignore[attr-defined]
    conf.set_may_talk(analyst.id, False)
    conf.tick(0.04)
    assert ceo.leg.received[-1] == b"PCMU:0"  # type: ignore[attr-defined]
    conf.leave(analyst.id)
    with pytest.raises(ConferenceError):
        conf.set_may_talk(analyst.id, True)


class BrokenAudience:
    """An Audience whose batched send fails (a fault in the fast path)."""

    def __init__(self) -> None:
        self.closed = False

    def send(self, legs: object, payloads: object, own: object, now: float) -> int:
        raise RuntimeError("broken")

    def close(self) -> None:
        self.closed = True


def test_a_failing_batched_send_falls_back_to_leg_by_leg_for_good() -> None:
    made: list[BrokenAudience] = []

    def factory() -> BrokenAudience:
        made.append(BrokenAudience())
        return made[-1]

    conf = Conference(1, encoder, audience=factory)
    conf.start()
    conf.join(RecordingLeg(level=100), True)
    listeners = [RecordingLeg() for _ in range(3)]
    for leg in listeners:
        conf.join(leg, False)
    conf.tick(0.0)
    conf.tick(0.0)
    assert all(leg.received == [b"PCMU:100", b"PCMU:100"] for leg in listeners)
    assert len(made) == 1 and made[0].closed


def test_talk_indicators_flipping_are_counted_for_the_console() -> None:
    conf = Conference(1, encoder)
    conf.start()
    leg = RecordingLeg(level=3000)
    speaker = conf.join(leg, True)
    conf.tick(0.0)
    assert speaker.talking and conf.talk_changes == 1
    conf.tick(0.02)  # still talking: nothing for the console
    assert conf.talk_changes == 1
    leg.frame = None  # silent from now on
    for n in range(1, 100):
        conf.tick(0.02 * n)
        if not speaker.talking:
            break
    assert not speaker.talking and conf.talk_changes == 2


# -- the 16 kHz mix with real codecs --------------------------------------------


def wide_tone(freq: float, frame: int, amplitude: int = 6000) -> Pcm:
    n = frame * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)
    return (amplitude * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.int16)


class ToneLeg:
    """A caller on ``codec`` who says a tone (or nothing) and decodes what they are sent."""

    def __init__(self, codec: str, freq: float | None = None) -> None:
        self.codec_name = codec
        self.freq = freq
        self.frame = 0
        self.decoder = codecs.decoder(codec)
        self.heard: list[Pcm] = []

    def pull_frame(self, now: float) -> Pcm | None:
        if self.freq is None:
            return None
        self.frame += 1
        return wide_tone(self.freq, self.frame)

    def send_payload(self, payload: bytes, now: float) -> None:
        frame = self.decoder.decode(payload)
        assert frame is not None
        self.heard.append(frame)

    def level(self, freq: float) -> float:
        """Amplitude of ``freq`` in what was heard after the first half second."""
        heard = np.concatenate(self.heard[25:]).astype(np.float64)
        window = np.hanning(len(heard))
        spectrum = np.abs(np.fft.rfft(heard * window)) * 2 / window.sum()
        index = round(freq * len(heard) / SAMPLE_RATE)
        return float(spectrum[index - 2 : index + 3].max())


def test_each_speaker_hears_the_others_but_not_themself_in_their_own_codec() -> None:
    conf = Conference(1, codecs.encoder)
    conf.start()
    wide = ToneLeg("G722", 6000)  # a wideband speaker
    phone = ToneLeg("PCMU", 1000)  # a phone speaker
    opus = ToneLeg("opus", 2500)
    listeners = [ToneLeg("PCMU") for _ in range(3)] + [ToneLeg("G722") for _ in range(2)]
    for leg in (wide, phone, opus):
        conf.join(leg, True)
    for leg in listeners:
        conf.join(leg, False)
    for n in range(100):
        conf.tick(n * 0.02)
    # Minus self, per codec: nobody hears their own tone, everyone hears the others.
    # (Below 300 of 6,000 is the codecs' own noise: μ-law's, Opus's.)
    assert wide.level(6000) < 300 and wide.level(1000) > 4000 and wide.level(2500) > 4000
    assert phone.level(1000) < 300 and phone.level(2500) > 4000
    assert opus.level(2500) < 300 and opus.level(6000) > 3000 and opus.level(1000) > 3000
    # 6 kHz reaches wideband callers only: the phone band has no room for it.
    assert phone.level(6000) < 300
    for leg in listeners:
        assert leg.level(1000) > 4000 and leg.level(2500) > 4000
        assert (leg.level(6000) > 4000) is (leg.codec_name == "G722")
    # Encoded once per codec for the five listeners, once per speaker for their own mix.
    assert conf.stats.encodes == 100 * (3 + 2)


def test_an_8_khz_whisper_is_spoken_over_the_16_khz_mix() -> None:
    conf = Conference(1, codecs.encoder)
    conf.start()
    speaker = ToneLeg("G722", 6000)
    listener = ToneLeg("G722")
    conf.join(speaker, True)
    joined = conf.join(listener, False)
    prompt = (6000 * np.sin(2 * np.pi * 500 * np.arange(8000) / 8000)).astype(np.int16)
    conf.whisper(joined.id, iter(prompt.reshape(-1, 160)))
    for n in range(50):
        conf.tick(n * 0.02)
    assert listener.level(500) > 4000 and listener.level(6000) > 4000
