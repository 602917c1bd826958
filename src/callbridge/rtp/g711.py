"""G.711 µ-law (PCMU) and A-law (PCMA) with lookup tables.

Decoding is one 256-entry table, encoding one 65,536-entry table indexed by
the 16-bit sample; both are built once, at import, from the reference
algorithms (ITU-T G.711, as in the widely used Sun reference code), so a
20 ms frame costs two numpy fancy-index operations.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def ulaw_encode_sample(pcm: int) -> int:
    """The reference µ-law encoder for one 16-bit sample."""
    sign = 0x80 if pcm < 0 else 0
    magnitude = min(-pcm if pcm < 0 else pcm, _ULAW_CLIP) + _ULAW_BIAS
    exponent = min(max((magnitude >> 7).bit_length() - 1, 0), 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode_sample(code: int) -> int:
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    sample = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -sample if sign else sample


def alaw_encode_sample(pcm: int) -> int:
    """The reference A-law encoder for one 16-bit sample (13-bit magnitude)."""
    value = pcm >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEG_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
    return code ^ mask


def alaw_decode_sample(code: int) -> int:
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    elif segment == 1:
        value += 0x108
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


def _ulaw_encode_all(samples: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The reference µ-law encoder, vectorised over every 16-bit value."""
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.clip(np.floor(np.log2(np.maximum(magnitude >> 7, 1))).astype(np.int64), 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code: npt.NDArray[np.int64] = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return code.astype(np.uint8)


def _alaw_encode_all(samples: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The reference A-law encoder, vectorised over every 16-bit value."""
    value = samples >> 3
    mask = np.where(value >= 0, 0xD5, 0x55)
    value = np.where(value >= 0, value, -value - 1)
    segment = np.searchsorted(np.array(_ALAW_SEG_END), value, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((value >> shift) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def _build_tables() -> tuple[Pcm, npt.NDArray[np.uint8], Pcm, npt.NDArray[np.uint8]]:
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)
    ulaw_dec = np.array([ulaw_decode_sample(c) for c in range(256)], dtype=np.int16)
    alaw_dec = np.array([alaw_decode_sample(c) for c in range(256)], dtype=np.int16)
    return ulaw_dec, _ulaw_encode_all(samples), alaw_dec, _alaw_encode_all(samples)


_ULAW_DEC, _ULAW_ENC, _ALAW_DEC, _ALAW_ENC = _build_tables()
for _table in (_ULAW_DEC, _ULAW_ENC, _ALAW_DEC, _ALAW_ENC):
    _table.flags.writeable = False


def _index(pcm: Pcm) -> npt.NDArray[np.uint16]:
    return np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)


def ulaw_encode(pcm: Pcm) -> bytes:
    return _ULAW_ENC[_index(pcm)].tobytes()


def ulaw_decode(data: bytes) -> Pcm:
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: Pcm) -> bytes:
    return _ALAW_ENC[_index(pcm)].tobytes()


def alaw_decode(data: bytes) -> Pcm:
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]


class Codec(enum.Enum):
    """The G.711 codecs we speak, with their static payload types (RFC 3551)."""

    PCMU = ("PCMU", 0, 0xFF)
    PCMA = ("PCMA", 8, 0xD5)

    def __init__(self, encoding: str, payload_type: int, silence: int) -> None:
        self.encoding = encoding
        self.static_payload_type = payload_type
        self.silence_byte = silence

    @classmethod
    def by_name(cls, name: str) -> Codec:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unsupported codec {name!r}") from None

    def encode(self, pcm: Pcm) -> bytes:
        return ulaw_encode(pcm) if self is Codec.PCMU else alaw_encode(pcm)

    def decode(self, data: bytes) -> Pcm:
        return ulaw_decode(data) if self is Codec.PCMU else alaw_decode(data)


def encode(codec_name: str, pcm: Pcm) -> bytes:
    """Encode by codec name ("PCMU" or "PCMA"); the conference's encoder."""
    return Codec.by_name(codec_name).encode(pcm)
