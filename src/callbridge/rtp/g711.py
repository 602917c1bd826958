"""G.711 µ-law (PCMU) and A-law (PCMA) with lookup tables.

Decoding is one 256-entry int16 table, encoding one 65,536-entry uint8
table indexed by the 16-bit sample read as uint16, so a 20 ms frame costs
one numpy fancy-index operation. The tables are built once, at import, by
vectorised versions of the ITU-T reference (``g711.c`` of the G.191
Software Tools Library): a 16-bit sample is cut to the 14 (µ-law) or 13
(A-law) bits G.711 defines, and negative values are taken in one's
complement (``~x``), which is what makes -1 encode to the negative zero
code (µ-law 0x7F, A-law 0x55). The older Sun code and Python's ``audioop``
negate in two's complement instead and differ from G.711 by one step at the
segment edges of negative samples.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
Codes = npt.NDArray[np.uint8]
_Wide = npt.NDArray[np.int64]


def _ulaw_compress(pcm: _Wide) -> _Wide:
    """G.191 ``ulaw_compress`` over an array of 16-bit samples (held in int64)."""
    absno = np.where(pcm < 0, (~pcm) >> 2, pcm >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    # segno = 1 + bit length of (absno >> 6): the segment, counted from 1.
    segno = np.ones_like(absno)
    rest = absno >> 6
    while np.any(rest):
        segno += rest != 0
        rest >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    signed: _Wide = np.where(pcm >= 0, code | 0x80, code)
    return signed


def _ulaw_expand(code: _Wide) -> _Wide:
    """G.191 ``ulaw_expand`` over an array of codes 0..255."""
    sign = np.where(code < 0x80, -1, 1)
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    segment = exponent + 1
    mantissa &= 0x0F
    step = 4 << segment
    linear: _Wide = sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)
    return linear


def _alaw_compress(pcm: _Wide) -> _Wide:
    """G.191 ``alaw_compress`` over an array of 16-bit samples (held in int64)."""
    ix = np.where(pcm < 0, (~pcm) >> 4, pcm >> 4)
    exponent = np.ones_like(ix)
    big = ix > 15
    while np.any(wide := ix > 16 + 15):
        ix = np.where(wide, ix >> 1, ix)
        exponent += wide
    ix = np.where(big, ix - 16 + (exponent << 4), ix)
    ix = np.where(pcm >= 0, ix | 0x80, ix)
    return ix ^ 0x55


def _alaw_expand(code: _Wide) -> _Wide:
    """G.191 ``alaw_expand`` over an array of codes 0..255."""
    ix = (code ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 0x08
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(code > 127, mantissa, -mantissa)


def _build() -> tuple[Pcm, Codes, Pcm, Codes]:
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)
    codes = np.arange(256, dtype=np.int64)
    tables = (
        _ulaw_expand(codes).astype(np.int16),
        _ulaw_compress(samples).astype(np.uint8),
        _alaw_expand(codes).astype(np.int16),
        _alaw_compress(samples).astype(np.uint8),
    )
    for table in tables:
        table.flags.writeable = False
    return tables


ULAW_DECODE, ULAW_ENCODE, ALAW_DECODE, ALAW_ENCODE = _build()

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def _index(pcm: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    return np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)


def ulaw_encode(pcm: npt.ArrayLike) -> bytes:
    """µ-law bytes for int16 samples (one byte per sample)."""
    return ULAW_ENCODE[_index(pcm)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> Pcm:
    """int16 samples for µ-law bytes; a new array the caller may modify."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: npt.ArrayLike) -> bytes:
    """A-law bytes for int16 samples (one byte per sample)."""
    return ALAW_ENCODE[_index(pcm)].tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> Pcm:
    """int16 samples for A-law bytes; a new array the caller may modify."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


class Codec(enum.Enum):
    """The G.711 codecs callbridge speaks, with their static payload types (RFC 3551).

    ``Codec.by_name(sdp_encoding_name)`` after SDP negotiation, then
    ``encode``/``decode`` per frame. ``encode_table``/``decode_table`` are
    for callers that index many frames at once (the mixer's fan-out).
    """

    PCMU = ("PCMU", 0, ULAW_SILENCE)
    PCMA = ("PCMA", 8, ALAW_SILENCE)

    def __init__(self, encoding: str, payload_type: int, silence: int) -> None:
        self.encoding = encoding
        self.static_payload_type = payload_type
        self.silence_byte = silence
        self.clock_rate = 8000

    @classmethod
    def by_name(cls, name: str) -> Codec:
        """The codec for an SDP encoding name, case-insensitive; ValueError if unknown."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unsupported codec {name!r}") from None

    @classmethod
    def by_payload_type(cls, payload_type: int) -> Codec:
        """The codec with this static payload type (0 or 8); ValueError otherwise."""
        for codec in cls:
            if codec.static_payload_type == payload_type:
                return codec
        raise ValueError(f"no G.711 codec has static payload type {payload_type}")

    @property
    def encode_table(self) -> Codes:
        return ULAW_ENCODE if self is Codec.PCMU else ALAW_ENCODE

    @property
    def decode_table(self) -> Pcm:
        return ULAW_DECODE if self is Codec.PCMU else ALAW_DECODE

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        """Payload bytes for int16 samples."""
        return self.encode_table[_index(pcm)].tobytes()

    def decode(self, data: bytes | bytearray | memoryview) -> Pcm:
        """int16 samples for payload bytes."""
        return self.decode_table[np.frombuffer(data, dtype=np.uint8)]

    def silence(self, samples: int = 160) -> bytes:
        """A payload of ``samples`` samples of silence (one 20 ms frame by default)."""
        return bytes([self.silence_byte]) * samples


def encode(codec_name: str, pcm: npt.ArrayLike) -> bytes:
    """Encode by codec name ("PCMU" or "PCMA"); the conference's encoder."""
    return Codec.by_name(codec_name).encode(pcm)
