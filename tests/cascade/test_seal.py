"""The bus's seal: what a key holder seals opens; anything else is refused for the right reason;
a message is taken once and only while fresh; the key file is for its owner alone."""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.cascade.messages import MAX_PAYLOAD, ORIGIN, BusError, Envelope, Keyed, encode
from callbridge.cascade.seal import (
    FORGET,
    KEY_BYTES,
    OVERHEAD,
    WINDOW,
    Forged,
    KeyFileError,
    Replayed,
    ReplayGuard,
    Stale,
    Stamp,
    Stamper,
    Unsigned,
    check_key_file,
    generate_key_file,
    read_key,
    seal,
    unseal,
)

KEY = bytes(range(KEY_BYTES))
OTHER = bytes(KEY_BYTES)
TEXT = encode(Envelope("edge-a", ORIGIN, Keyed("p1", "1", 1.0)))
STAMP = Stamp("0123456789abcdef", 7, 1_800_000_000.123)


def test_what_is_sealed_opens_with_its_stamp() -> None:
    payload = seal(KEY, STAMP, TEXT)
    assert unseal(KEY, payload) == (STAMP, TEXT)


def test_a_sealed_envelope_stays_under_postgresqls_limit() -> None:
    big = Stamp("f" * 16, 2**63 - 1, 999_999_999_999.999)
    assert len(seal(KEY, big, "x" * MAX_PAYLOAD)) <= MAX_PAYLOAD + OVERHEAD < 8000


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        pytest.param(TEXT, Unsigned, id="bare-envelope"),
        pytest.param("", Unsigned, id="empty"),
        pytest.param(seal(OTHER, STAMP, TEXT), Forged, id="another-key"),
        pytest.param(seal(KEY, STAMP, TEXT).replace('"1"', '"2"'), Forged, id="altered-body"),
        pytest.param(seal(KEY, STAMP, TEXT).replace(":7:", ":8:", 1), Forged, id="new-counter"),
        pytest.param(seal(KEY, STAMP, TEXT).replace("edge-a", "edge-b"), Forged, id="new-sender"),
        pytest.param("0" * 64 + ":" + seal(KEY, STAMP, TEXT)[65:], Forged, id="zero-mac"),
    ],
)
def test_what_a_key_holder_did_not_seal_is_refused(payload: str, refusal: type[BusError]) -> None:
    with pytest.raises(refusal):
        unseal(KEY, payload)


_SEALED = seal(KEY, STAMP, TEXT)


@given(
    st.one_of(
        st.text(max_size=300),
        # A seal's head, then anything: the MAC's check refuses it, never a parser.
        st.builds(lambda cut, tail: _SEALED[:cut] + tail, st.integers(0, 130), st.text()),
    )
)
def test_unseal_returns_or_raises_a_bus_error(payload: str) -> None:
    with contextlib.suppress(BusError):
        unseal(KEY, payload)


def test_a_stamp_is_taken_once() -> None:
    guard = ReplayGuard()
    stamper = Stamper()
    first, second = stamper.next(100.0), stamper.next(100.5)
    guard.check("edge-a", first, 100.0)
    guard.check("edge-a", second, 100.6)
    for again in (first, second):
        with pytest.raises(Replayed):
            guard.check("edge-a", again, 101.0)
    # Another sender's numbers are its own.
    guard.check("edge-b", first, 101.0)


def test_a_restarted_sender_is_a_new_incarnation_and_the_old_one_is_still_remembered() -> None:
    guard = ReplayGuard()
    old, new = Stamper(), Stamper()
    taken = [old.next(100.0) for _ in range(3)]
    for stamp in taken:
        guard.check("edge-a", stamp, 100.0)
    guard.check("edge-a", new.next(101.0), 101.0)
    # Back and forth between the incarnations gets no old message in again.
    with pytest.raises(Replayed):
        guard.check("edge-a", taken[-1], 102.0)
    guard.check("edge-a", new.next(102.0), 102.0)


def test_a_stamp_off_the_clock_is_stale_either_way() -> None:
    guard = ReplayGuard()
    with pytest.raises(Stale, match="clocks"):
        guard.check("edge-a", Stamp("0" * 16, 1, 100.0), 100.0 + WINDOW + 0.1)
    with pytest.raises(Stale):
        guard.check("edge-a", Stamp("0" * 16, 1, 100.0 + WINDOW + 0.1), 100.0)
    guard.check("edge-a", Stamp("0" * 16, 1, 100.0), 100.0 + WINDOW)


def test_a_forgotten_incarnation_could_not_be_replayed_any_more() -> None:
    guard = ReplayGuard()
    stamp = Stamp("a" * 16, 5, 100.0)
    guard.check("edge-a", stamp, 100.0 + WINDOW)  # taken as late as it can be
    guard.check("edge-a", Stamp("b" * 16, 1, 100.0 + FORGET + WINDOW), 100.0 + FORGET + WINDOW + 1)
    # Its memory gone, the old stamp is stale long since.
    with pytest.raises(Stale):
        guard.check("edge-a", stamp, 100.0 + FORGET + WINDOW + 2)


def test_keygen_writes_a_key_only_its_owner_reads(tmp_path: Path) -> None:
    path = tmp_path / "bus.key"
    generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key(path)
    assert len(key) == KEY_BYTES
    with pytest.raises(KeyFileError, match="exists"):
        generate_key_file(path)
    assert read_key(path) == key
    other = tmp_path / "other.key"
    generate_key_file(other)
    assert read_key(other) != key


def test_a_key_file_open_to_others_or_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bus.key"
    generate_key_file(path)
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        check_key_file(path)
    path.chmod(0o600)
    path.write_text("z" * 64 + "\n")
    with pytest.raises(KeyFileError, match="not a bus key"):
        read_key(path)
    path.write_text("short\n")
    with pytest.raises(KeyFileError, match="not a bus key"):
        check_key_file(path)
    with pytest.raises(KeyFileError, match="No such file"):
        check_key_file(tmp_path / "missing")
    with pytest.raises(KeyFileError, match="not a file"):
        check_key_file(tmp_path)
