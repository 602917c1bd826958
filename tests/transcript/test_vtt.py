from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.transcript.vtt import (
    Cue,
    VttError,
    format_timestamp,
    normalise_text,
    parse_timestamp,
    parse_vtt,
    unescape,
    write_vtt,
)

TIMING = re.compile(
    r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$"
)


def check_valid(content: str) -> None:
    """The structure a WebVTT parser requires of what we write."""
    assert content.startswith("WEBVTT\n\n") or content == "WEBVTT\n"
    assert "\r" not in content and "\x00" not in content
    for block in content.rstrip("\n").split("\n\n")[1:]:
        lines = block.split("\n")
        match = TIMING.match(lines[0])
        assert match, lines[0]
        start, end = (parse_timestamp(part) for part in lines[0].split(" --> "))
        assert end > start
        payload = lines[1:]
        assert payload and all(line.strip() for line in payload)
        assert not any("-->" in line for line in payload)


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(3661.5) == "01:01:01.500"
    assert format_timestamp(100 * 3600) == "100:00:00.000"
    assert parse_timestamp("01:02.003") == pytest.approx(62.003)
    with pytest.raises(VttError):
        parse_timestamp("1:2:3")


def test_voice_spans_escaping_and_wrapping() -> None:
    text = "Revenue <up> 12% & margins --> better than we said in the last quarter, thank you"
    content = write_vtt([Cue(1.0, 4.5, text, "Jane <CFO>"), Cue(5, 6, "Next.", None)])
    check_valid(content)
    assert "<v Jane &lt;CFO&gt;>" in content
    assert "&lt;up&gt; 12% &amp; margins --&gt; better" in content
    first = content.split("\n\n")[1].split("\n")
    visible = [unescape(re.sub(r"<[^>]*>", "", line)) for line in first[1:]]
    assert len(visible) == 2 and all(len(line) <= 42 for line in visible)
    assert parse_vtt(content) == [Cue(1.0, 4.5, text, "Jane <CFO>"), Cue(5.0, 6.0, "Next.", None)]


def test_empty_cues_are_left_out_and_header_is_required() -> None:
    assert write_vtt([Cue(0, 1, "  \n ", "A")]) == "WEBVTT\n"
    with pytest.raises(VttError):
        parse_vtt("00:00:00.000 --> 00:00:01.000\nhello\n")


def test_parser_reads_foreign_files() -> None:
    content = (
        "\ufeffWEBVTT - earnings\r\n\r\nNOTE made elsewhere\r\n\r\n"
        "intro\r\n00:01.000 --> 00:02.500 align:start\r\n<v.loud Bob>Hello <b>all</b></v>\r\n"
    )
    assert parse_vtt(content) == [Cue(1.0, 2.5, "Hello all", "Bob")]


texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200)


@given(
    cues=st.lists(
        st.tuples(
            st.integers(0, 10_000_000),
            st.integers(1, 60_000),
            texts,
            st.none() | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
        ),
        max_size=8,
    )
)
def test_round_trip(cues: list[tuple[int, int, str, str | None]]) -> None:
    written = [
        Cue(start / 1000, (start + length) / 1000, text, voice)
        for start, length, text, voice in cues
    ]
    content = write_vtt(written)
    check_valid(content)
    expected = [
        Cue(cue.start, cue.end, normalise_text(cue.text), normalise_text(cue.voice or "") or None)
        for cue in written
        if normalise_text(cue.text)
    ]
    assert parse_vtt(content) == expected
