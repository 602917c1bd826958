"""AAC-LC encoding of the mix into raw access units (no ADTS, no container).

The packager puts the access units into fMP4 itself (``fmp4``), so this
only runs FFmpeg's ``aac`` encoder through PyAV: int16 in (the live mix at
16 kHz, a recording at 8 kHz: ``input_rate``), resampled
by libswresample to the output rate, cut into the encoder's 1024-sample
frames here (so that timestamps stay exact), one access unit per frame out.
"""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from callbridge.media.mixer import SAMPLE_RATE, Pcm

AAC_FRAME = 1024  # samples per AAC-LC access unit


class AacEncoder:
    """Turns mono PCM at ``input_rate`` into AAC-LC access units at ``sample_rate``.

    Not thread-safe: one thread feeds it. ``encode`` returns the access units
    completed so far (each lasting ``AAC_FRAME`` samples at ``sample_rate``);
    ``flush`` pads the last frame with silence and drains the encoder.
    The first access unit is the encoder's priming: decoded audio lags the
    input by ``priming`` samples at ``sample_rate``.
    """

    def __init__(
        self, sample_rate: int = 48_000, bit_rate: int = 32_000, input_rate: int = SAMPLE_RATE
    ) -> None:
        self.sample_rate = sample_rate
        self.input_rate = input_rate
        self.bit_rate = bit_rate
        codec = av.CodecContext.create("aac", "w")
        if not isinstance(codec, av.AudioCodecContext):  # pragma: no cover - FFmpeg's own aac
            raise TypeError("aac is not an audio codec")
        codec.sample_rate = sample_rate
        codec.layout = "mono"
        codec.format = "fltp"
        codec.bit_rate = bit_rate
        codec.open()
        self._codec = codec
        self.audio_specific_config = bytes(codec.extradata or b"")
        # FFmpeg's aac encoder delays its output by one frame (initial_padding).
        self.priming = AAC_FRAME
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=sample_rate)
        self._pending: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._in_pts = 0
        self._out_pts = 0

    def encode(self, pcm: Pcm) -> list[bytes]:
        """Feed int16 samples at ``input_rate``; returns the access units now complete."""
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.input_rate
        frame.pts = self._in_pts
        self._in_pts += frame.samples
        return self._feed(self._resampler.resample(frame))

    def flush(self) -> list[bytes]:
        """Encode what is left (padded with silence to a whole frame) and drain the encoder."""
        units = self._feed(self._resampler.resample(None))
        if len(self._pending):
            pad = np.zeros(AAC_FRAME - len(self._pending), dtype=np.float32)
            self._pending = np.concatenate([self._pending, pad])
            units += self._encode_pending()
        units += [bytes(p) for p in self._codec.encode(None)]
        return units

    def _feed(self, frames: list[av.AudioFrame]) -> list[bytes]:
        if frames:
            self._pending = np.concatenate(
                [self._pending, *(f.to_ndarray()[0].astype(np.float32) for f in frames)]
            )
        return self._encode_pending()

    def _encode_pending(self) -> list[bytes]:
        units: list[bytes] = []
        whole = len(self._pending) // AAC_FRAME * AAC_FRAME
        for start in range(0, whole, AAC_FRAME):
            chunk = self._pending[start : start + AAC_FRAME].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._out_pts
            self._out_pts += AAC_FRAME
            units.extend(bytes(p) for p in self._codec.encode(frame))
        self._pending = self._pending[whole:]
        return units
