from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra.numpy import arrays

from callbridge.rtp import g711

ALL = np.arange(65536, dtype=np.uint16).view(np.int16)


# The ITU-T reference, g711.c of the G.191 Software Tools Library, line by
# line for one sample at a time; C's ``short`` arithmetic is Python's int here.


def ref_ulaw_compress(linbuf: int) -> int:
    absno = ((~linbuf) >> 2) + 33 if linbuf < 0 else (linbuf >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = (absno >> segno) & 0x000F
    low_nibble = 0x000F - low_nibble
    logbuf = (high_nibble << 4) | low_nibble
    if linbuf >= 0:
        logbuf = logbuf | 0x0080
    return logbuf


def ref_ulaw_expand(logbuf: int) -> int:
    sign = -1 if logbuf < 0x0080 else 1
    mantissa = ~logbuf
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa = mantissa & 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(linbuf: int) -> int:
    ix = (~linbuf) >> 4 if linbuf < 0 else linbuf >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if linbuf >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def ref_alaw_expand(logbuf: int) -> int:
    ix = logbuf ^ 0x0055
    ix &= 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant = mant + 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant = mant << (iexp - 1)
    return mant if logbuf > 127 else -mant


def test_encoders_are_bit_exact_with_the_reference_for_every_sample() -> None:
    ulaw = g711.ulaw_encode(ALL)
    alaw = g711.alaw_encode(ALL)
    assert ulaw == bytes(ref_ulaw_compress(int(x)) for x in ALL)
    assert alaw == bytes(ref_alaw_compress(int(x)) for x in ALL)


def test_decoders_are_bit_exact_with_the_reference_for_every_code() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tolist() == [ref_ulaw_expand(c) for c in codes]
    assert g711.alaw_decode(codes).tolist() == [ref_alaw_expand(c) for c in codes]


def test_decoding_agrees_with_ffmpeg() -> None:
    # Decoding has one right answer; FFmpeg's pcm_mulaw/pcm_alaw are an
    # implementation that shares no code with ours.
    av = pytest.importorskip("av")
    codes = bytes(range(256))
    for name, ours in (("pcm_mulaw", g711.ulaw_decode), ("pcm_alaw", g711.alaw_decode)):
        decoder = av.CodecContext.create(name, "r")
        decoder.sample_rate = 8000
        decoder.layout = "mono"
        frames = decoder.decode(av.Packet(codes))
        theirs = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        assert theirs.tolist() == ours(codes).tolist()


def test_known_values() -> None:
    # Both zeros decode to 0; -1 is G.711's negative zero, not the step below it.
    assert g711.ulaw_encode(np.array([0, -1, -4, 32767, -32768], np.int16)) == bytes(
        [0xFF, 0x7F, 0x7F, 0x80, 0x00]
    )
    assert g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]
    assert g711.alaw_encode(np.array([0, -1, 32767, -32768], np.int16)) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A]
    )
    assert g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


def test_decode_then_encode_gives_the_code_back() -> None:
    # Every code's decoded value lies inside its own decision interval.
    for codec in g711.Codec:
        codes = bytes(range(256))
        back = codec.encode(codec.decode(codes))
        if codec is g711.Codec.PCMU:
            # 0x7F and 0xFF both decode to 0, which encodes as +0.
            assert back == codes.replace(b"\x7f", b"\xff")
        else:
            assert back == codes


def test_quantising_is_monotonic_in_the_sample() -> None:
    ramp = np.arange(-32768, 32768).astype(np.int16)
    for codec in g711.Codec:
        assert np.all(np.diff(codec.decode(codec.encode(ramp)).astype(int)) >= 0)


@given(arrays(np.int16, 160))
def test_round_trip_error_is_bounded(pcm: np.ndarray) -> None:
    for codec in g711.Codec:
        back = codec.decode(codec.encode(pcm)).astype(int)
        # G.711 keeps about 4 % of the magnitude, plus a small floor near zero.
        assert np.all(np.abs(back - pcm.astype(int)) <= np.abs(pcm.astype(int)) // 16 + 40)


def test_tables_are_read_only_and_sized() -> None:
    assert g711.ULAW_DECODE.shape == g711.ALAW_DECODE.shape == (256,)
    assert g711.ULAW_ENCODE.shape == g711.ALAW_ENCODE.shape == (65536,)
    with pytest.raises(ValueError):
        g711.ULAW_ENCODE[0] = 1


def test_codec_registry() -> None:
    assert g711.Codec.by_name("pcmu") is g711.Codec.PCMU
    assert g711.Codec.by_payload_type(8) is g711.Codec.PCMA
    assert (g711.Codec.PCMU.static_payload_type, g711.Codec.PCMU.silence_byte) == (0, 0xFF)
    assert (g711.Codec.PCMA.static_payload_type, g711.Codec.PCMA.silence_byte) == (8, 0xD5)
    assert g711.Codec.PCMA.silence(2) == b"\xd5\xd5"
    with pytest.raises(ValueError, match="G722"):
        g711.Codec.by_name("G722")
    with pytest.raises(ValueError):
        g711.Codec.by_payload_type(9)


def test_silence_encodes_to_the_silence_byte() -> None:
    pcm = np.zeros(160, np.int16)
    assert g711.encode("PCMU", pcm) == g711.Codec.PCMU.silence()
    assert g711.encode("pcma", pcm) == g711.Codec.PCMA.silence()
    assert not g711.ulaw_decode(g711.Codec.PCMU.silence()).any()
    # A-law has no zero level: its silence is the smallest positive step.
    assert set(g711.alaw_decode(g711.Codec.PCMA.silence()).tolist()) == {8}
