from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given
from hypothesis.extra.numpy import arrays

from callbridge.rtp import g711

ALL = np.arange(65536, dtype=np.uint16).view(np.int16)


def _audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    return audioop


def test_tables_equal_the_sample_by_sample_reference() -> None:
    ulaw = np.frombuffer(g711.ulaw_encode(ALL), np.uint8)
    alaw = np.frombuffer(g711.alaw_encode(ALL), np.uint8)
    assert all(ulaw[i] == g711.ulaw_encode_sample(int(ALL[i])) for i in range(0, 65536, 7))
    assert all(alaw[i] == g711.alaw_encode_sample(int(ALL[i])) for i in range(0, 65536, 7))


def test_against_an_independent_implementation() -> None:
    audioop = _audioop()
    raw = ALL.astype("<i2").tobytes()
    codes = bytes(range(256))
    assert audioop.lin2alaw(raw, 2) == g711.alaw_encode(ALL)
    assert np.array_equal(np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"), g711.ulaw_decode(codes))
    assert np.array_equal(np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"), g711.alaw_decode(codes))
    # audioop rounds negative samples to 14 bits before encoding; the Sun reference
    # does not. They may differ by one step at segment edges, never more.
    theirs = np.frombuffer(audioop.lin2ulaw(raw, 2), np.uint8).astype(int)
    ours = np.frombuffer(g711.ulaw_encode(ALL), np.uint8).astype(int)
    assert np.abs(theirs - ours).max() <= 1
    assert (theirs != ours).sum() < 500


def test_known_values() -> None:
    assert g711.ulaw_encode(np.array([0, -1, 32767, -32768], np.int16)) == bytes(
        [0xFF, 0x7F, 0x80, 0x00]
    )
    assert list(g711.ulaw_decode(bytes([0xFF, 0x7F]))) == [0, 0]
    assert g711.alaw_encode(np.array([0, 32767, -32768], np.int16)) == bytes([0xD5, 0xAA, 0x2A])
    assert g711.Codec.PCMU.silence_byte == 0xFF
    assert g711.Codec.PCMA.static_payload_type == 8


@given(arrays(np.int16, 160))
def test_round_trip_error_is_bounded(pcm: np.ndarray) -> None:
    for codec in g711.Codec:
        back = codec.decode(codec.encode(pcm)).astype(int)
        # G.711 keeps about 4 % of the magnitude, plus a small floor near zero.
        assert np.all(np.abs(back - pcm.astype(int)) <= np.abs(pcm.astype(int)) // 16 + 40)


def test_encode_by_name() -> None:
    pcm = np.zeros(160, np.int16)
    assert g711.encode("PCMU", pcm) == b"\xff" * 160
    assert g711.encode("pcma", pcm) == b"\xd5" * 160
