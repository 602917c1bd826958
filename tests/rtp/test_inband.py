"""In-band DTMF: keys through μ-law are heard once; speech, lone tones and blips are not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.rtp.g711 import Codec
from callbridge.rtp.inband import COLUMNS, KEYS, ROWS, KeyMerge, KeyPath, ToneDetector

RATE = 8000
ALL_KEYS = "".join(KEYS)


def frequencies(key: str) -> tuple[float, float]:
    row = next(r for r, keys in enumerate(KEYS) if key in keys)
    return ROWS[row], COLUMNS[KEYS[row].index(key)]


def tone(key: str, ms: float, level: float, twist_db: float = 0.0) -> npt.NDArray[np.float64]:
    """``key`` for ``ms``: the weaker tone at amplitude ``level``, the column ``twist_db`` above
    the row."""
    low, high = frequencies(key)
    t = np.arange(int(RATE * ms / 1000)) / RATE
    row, column = level, level * 10 ** (twist_db / 20)
    if twist_db < 0:
        row, column = level * 10 ** (-twist_db / 20), level
    return row * np.sin(2 * np.pi * low * t) + column * np.sin(2 * np.pi * high * t + 1.0)


def silence(ms: float) -> npt.NDArray[np.float64]:
    return np.zeros(int(RATE * ms / 1000))


def heard(signal: npt.NDArray[np.float64], noise: float = 0.0, seed: int = 0) -> list[str]:
    """The keys a detector reports for ``signal`` (plus white noise), sent as PCMU frames."""
    rng = np.random.default_rng(seed)
    samples = signal + rng.normal(0, noise, len(signal)) if noise else signal
    pcm = np.clip(samples, -32768, 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % 160, dtype=np.int16)])
    decoded = Codec.PCMU.decode(Codec.PCMU.encode(pcm))
    detector = ToneDetector()
    keys = (detector.feed(decoded[i : i + 160]) for i in range(0, len(decoded), 160))
    return [key for key in keys if key is not None]


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_key_is_heard_once(key: str) -> None:
    assert heard(np.concatenate([silence(40), tone(key, 100, 4000), silence(60)])) == [key]


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from(ALL_KEYS),
    level=st.floats(600, 9000),
    twist=st.floats(-7.0, 3.0),
    ms=st.floats(60, 300),
    lead=st.integers(0, 159),
    noise=st.floats(0, 0.03),
    seed=st.integers(0, 2**16),
)
def test_a_key_at_any_level_twist_length_and_alignment_is_heard_once(
    key: str, level: float, twist: float, ms: float, lead: int, noise: float, seed: int
) -> None:
    signal = np.concatenate([np.zeros(lead), tone(key, ms, level, twist), silence(60)])
    assert heard(signal, noise * level, seed) == [key]


@settings(max_examples=60, deadline=None)
@given(
    keys=st.text(alphabet=ALL_KEYS, min_size=1, max_size=6),
    ms=st.floats(60, 120),
    gap=st.floats(60, 120),
)
def test_a_sequence_with_gaps_is_heard_key_by_key(keys: str, ms: float, gap: float) -> None:
    parts = [np.concatenate([tone(key, ms, 3000), silence(gap)]) for key in keys]
    assert "".join(heard(np.concatenate(parts))) == keys


@pytest.mark.parametrize("twist", [6.0, -11.0])
def test_twist_out_of_range_is_not_a_key(twist: float) -> None:
    assert heard(tone("5", 200, 3000, twist)) == []


def test_too_quiet_is_not_a_key() -> None:
    assert heard(tone("5", 200, 150)) == []


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(ALL_KEYS), ms=st.floats(5, 20), lead=st.integers(0, 159))
def test_a_burst_too_short_is_not_a_key(key: str, ms: float, lead: int) -> None:
    assert heard(np.concatenate([np.zeros(lead), tone(key, ms, 5000), silence(40)])) == []


@settings(max_examples=60, deadline=None)
@given(frequency=st.sampled_from(ROWS + COLUMNS), level=st.floats(300, 15000))
def test_a_single_tone_is_not_a_key(frequency: float, level: float) -> None:
    t = np.arange(RATE // 2) / RATE
    assert heard(level * np.sin(2 * np.pi * frequency * t)) == []


@settings(max_examples=80, deadline=None)
@given(
    f0=st.floats(80, 300),
    level=st.floats(1000, 12000),
    vibrato=st.floats(0, 0.05),
    seed=st.integers(0, 2**16),
)
def test_speech_like_sound_is_not_a_key(f0: float, level: float, vibrato: float, seed: int) -> None:
    """A voice: harmonics of a wandering pitch, falling off with frequency, and breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    pitch = f0 * (1 + vibrato * np.sin(2 * np.pi * 4 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(h * phase + rng.uniform(0, 6.3)) / h for h in range(1, int(3400 / f0) + 1))
    voice *= 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 3 * t))  # syllables
    assert heard(level * voice, noise=level * 0.05, seed=seed) == []


def test_white_noise_is_not_a_key() -> None:
    assert heard(silence(2000), noise=4000) == []


def test_a_held_key_with_a_lost_frame_in_it_is_one_key() -> None:
    signal = np.concatenate([tone("7", 100, 3000), silence(20), tone("7", 100, 3000)])
    assert heard(signal) == ["7"]


def test_a_frame_shorter_than_10_ms_is_ignored() -> None:
    assert ToneDetector().classify(np.zeros(40, dtype=np.int16)) is None


# -- both paths at once ------------------------------------------------------------


def test_a_key_by_both_paths_counts_once_whichever_comes_first() -> None:
    merge = KeyMerge()
    assert merge.take("5", KeyPath.RFC4733, 0.00)
    assert not merge.take("5", KeyPath.INBAND, 0.05)
    assert merge.take("5", KeyPath.INBAND, 1.00)
    assert not merge.take("5", KeyPath.RFC4733, 1.04)
    assert merge.merged == 2


def test_the_same_digit_twice_quickly_by_both_paths_counts_twice() -> None:
    merge = KeyMerge()
    taken = [
        merge.take("1", KeyPath.RFC4733, 0.00),
        merge.take("1", KeyPath.INBAND, 0.04),
        merge.take("1", KeyPath.RFC4733, 0.20),
        merge.take("1", KeyPath.INBAND, 0.24),
    ]
    assert taken == [True, False, True, False]


def test_keys_by_one_path_only_all_count() -> None:
    merge = KeyMerge()
    assert all(merge.take("9", KeyPath.INBAND, n * 0.2) for n in range(5))


@settings(max_examples=100, deadline=None)
@given(
    keys=st.text(alphabet=ALL_KEYS, min_size=1, max_size=8),
    spacing=st.floats(0.15, 0.4),
    delays=st.lists(st.floats(-0.1, 0.1), min_size=8, max_size=8),
    lost=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_presses_sent_both_ways_count_once_each(
    keys: str, spacing: float, delays: list[float], lost: list[bool]
) -> None:
    """Each press by RFC 4733 and, unless lost, as tones up to 100 ms apart: counted once."""
    arrivals: list[tuple[float, str, KeyPath]] = []
    for n, key in enumerate(keys):
        at = n * spacing
        arrivals.append((at, key, KeyPath.RFC4733))
        if not lost[n]:
            arrivals.append((at + delays[n], key, KeyPath.INBAND))
    arrivals.sort(key=lambda arrival: arrival[0])
    merge = KeyMerge()
    counted = [key for at, key, path in arrivals if merge.take(key, path, at)]
    assert "".join(counted) == keys
