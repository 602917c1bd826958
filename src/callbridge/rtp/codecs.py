"""The audio codecs a leg may speak, as 20 ms frame encoders and decoders.

G.711 (PCMU, PCMA) is 8 kHz narrowband by table (``rtp.g711``); G.722 and
Opus are 16 kHz wideband, by FFmpeg's ``g722`` and ``libopus`` through
PyAV. The conference mixes at 16 kHz (``WIDEBAND_RATE``): every decoder
gives 320 samples of 16 kHz audio per frame, whatever the codec, and every
encoder takes a frame of the mix. An encoder also takes a 160-sample frame
of 8 kHz audio (the IVR's prompts and the hold music are recorded at 8 kHz):
the rate of a 20 ms frame is told by its length, and each rate it meets
gets the encoder its own resampler.

Two quirks of the RTP payload formats live here and nowhere else:

- G.722's RTP clock is 8000 although it samples at 16 kHz (RFC 3551, 4.5.2:
  a mistake kept for compatibility): its timestamp rises 160 a frame.
- Opus is ``opus/48000/2`` in SDP whatever it carries (RFC 7587): its
  timestamp rises 960 a frame; we encode mono at 16 kHz, and FFmpeg's
  decoder gives 48 kHz, which is brought down to 16 kHz.

G.722 and Opus coders have memory (ADPCM predictors, Opus's state), and so
do the resamplers: one encoder per stream of frames (a talker's own mix, or
one per codec for everyone who hears the same mix: encode-once fan-out),
one decoder per caller. A listener who joins a shared stream part-way
decodes from a state it has not seen; both decoders settle within a few
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt

from callbridge.dsp.resample import Resampler
from callbridge.rtp.g711 import Codec

Pcm = npt.NDArray[np.int16]

NARROWBAND_RATE = 8000
WIDEBAND_RATE = 16_000  # the mix's rate (``media.mixer.SAMPLE_RATE``)
FRAME_MS = 20
OPUS_DECODE_RATE = 48_000  # what FFmpeg's Opus decoders give, whatever was asked
OPUS_BIT_RATE = 32_000  # wideband speech, mono: transparent to most ears


@dataclass(frozen=True)
class AudioFormat:
    """An RTP audio payload format as SDP names it, and the audio it carries."""

    name: str  # the encoding name as we write it in SDP
    clock_rate: int  # RTP timestamp units a second (the SDP rtpmap's rate)
    sample_rate: int  # of the audio itself
    channels: int = 1  # as the SDP rtpmap says it (Opus: always 2; we send mono)
    static_payload_type: int | None = None

    @property
    def wideband(self) -> bool:
        return self.sample_rate >= WIDEBAND_RATE

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp units in one 20 ms frame."""
        return self.clock_rate * FRAME_MS // 1000

    def rtpmap(self) -> str:
        """The rtpmap value after the payload type: ``G722/8000``, ``opus/48000/2``."""
        suffix = f"/{self.channels}" if self.channels > 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"


PCMU = AudioFormat("PCMU", 8000, 8000, static_payload_type=0)
PCMA = AudioFormat("PCMA", 8000, 8000, static_payload_type=8)
G722 = AudioFormat("G722", 8000, WIDEBAND_RATE, static_payload_type=9)
OPUS = AudioFormat("opus", 48_000, WIDEBAND_RATE, channels=2)

FORMATS: dict[str, AudioFormat] = {f.name.upper(): f for f in (PCMU, PCMA, G722, OPUS)}


def by_name(name: str) -> AudioFormat:
    """The format for an SDP encoding name, case-insensitive; ValueError if we do not speak it."""
    try:
        return FORMATS[name.upper()]
    except KeyError:
        raise ValueError(f"unsupported codec {name!r}") from None


class FrameEncoder(Protocol):
    def encode(self, pcm: Pcm) -> bytes:
        """One 20 ms frame (160 samples at 8 kHz or 320 at 16 kHz) as an RTP payload."""


class FrameDecoder(Protocol):
    def decode(self, payload: bytes) -> Pcm | None:
        """One RTP payload as 20 ms at the decoder's rate; None if it is not one frame."""


def _frame_rate(pcm: Pcm) -> int:
    rate = len(pcm) * 1000 // FRAME_MS
    if rate not in (NARROWBAND_RATE, WIDEBAND_RATE):
        raise ValueError(f"a 20 ms frame is 160 or 320 samples, not {len(pcm)}")
    return rate


class _RateAdapter:
    """Brings frames of either rate to ``rate``, with a resampler per rate it meets."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resamplers: dict[int, Resampler] = {}

    def __call__(self, pcm: Pcm) -> Pcm:
        rate = _frame_rate(pcm)
        if rate == self.rate:
            return pcm
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = Resampler(rate, self.rate)
        return resampler.process(pcm)


class G711Encoder:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._adapt = _RateAdapter(NARROWBAND_RATE)

    def encode(self, pcm: Pcm) -> bytes:
        return self.codec.encode(self._adapt(pcm))


class G711Decoder:
    def __init__(self, codec: Codec, rate: int) -> None:
        self.codec = codec
        self._up = Resampler(NARROWBAND_RATE, rate) if rate != NARROWBAND_RATE else None

    def decode(self, payload: bytes) -> Pcm | None:
        if len(payload) != NARROWBAND_RATE * FRAME_MS // 1000:
            return None  # a ptime we did not agree to: skip rather than misalign
        pcm = self.codec.decode(payload)
        return pcm if self._up is None else self._up.process(pcm)


class _AvEncoder:
    """An FFmpeg encoder fed 16 kHz mono s16 frames of 320 samples."""

    def __init__(self, codec: str, bit_rate: int | None = None) -> None:
        context = av.CodecContext.create(codec, "w")
        assert isinstance(context, av.AudioCodecContext)
        context.sample_rate = WIDEBAND_RATE
        context.layout = "mono"
        context.format = "s16"
        if bit_rate is not None:
            context.bit_rate = bit_rate
        context.open()
        self._context = context
        self._adapt = _RateAdapter(WIDEBAND_RATE)
        self._pts = 0
        self._pending: list[bytes] = []
        self._last = b""

    def encode(self, pcm: Pcm) -> bytes:
        wide = np.ascontiguousarray(self._adapt(pcm), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(wide.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WIDEBAND_RATE
        frame.pts = self._pts
        self._pts += len(wide)
        self._pending.extend(bytes(packet) for packet in self._context.encode(frame))
        if self._pending:
            self._last = self._pending.pop(0)
        # An encoder still filling its look-ahead has nothing yet: the caller
        # must send a frame every tick, and a repeat of the last is harmless.
        return self._last


class _AvDecoder:
    def __init__(self, codec: str, native_rate: int, rate: int) -> None:
        context = av.CodecContext.create(codec, "r")
        assert isinstance(context, av.AudioCodecContext)
        context.sample_rate = native_rate
        context.layout = "mono"
        self._context = context
        self._native = native_rate
        self._frame = rate * FRAME_MS // 1000
        self._down = Resampler(native_rate, rate) if rate != native_rate else None

    def decode(self, payload: bytes) -> Pcm | None:
        if not payload:
            return None
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.error.FFmpegError:
            return None  # a corrupt payload is one lost frame, not a broken leg
        parts = [f.to_ndarray().reshape(-1, f.samples)[0] for f in frames]
        if not parts:
            return None
        samples = np.concatenate(parts)
        if samples.dtype != np.int16:
            samples = np.clip(samples * 32768.0, -32768, 32767).astype(np.int16)
        if len(samples) != self._native * FRAME_MS // 1000:
            return None  # a ptime we did not agree to
        out = samples if self._down is None else self._down.process(samples)
        return out if len(out) == self._frame else None


def encoder(name: str) -> FrameEncoder:
    """A new encoder for one stream of frames in the named codec."""
    fmt = by_name(name)
    if fmt is G722:
        return _AvEncoder("g722")
    if fmt is OPUS:
        return _AvEncoder("libopus", OPUS_BIT_RATE)
    return G711Encoder(Codec.by_name(fmt.name))


def decoder(name: str, rate: int = WIDEBAND_RATE) -> FrameDecoder:
    """A new decoder for one caller's frames in the named codec, giving ``rate`` Hz."""
    fmt = by_name(name)
    if rate not in (NARROWBAND_RATE, WIDEBAND_RATE):
        raise ValueError(f"decoders give 8000 or 16000 Hz, not {rate}")
    if fmt is G722:
        return _AvDecoder("g722", WIDEBAND_RATE, rate)
    if fmt is OPUS:
        return _AvDecoder("libopus", OPUS_DECODE_RATE, rate)
    return G711Decoder(Codec.by_name(fmt.name), rate)
