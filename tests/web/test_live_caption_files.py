"""Where the web app finds the live captions: the player's entry playlist, the replay's captions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from callbridge.web.media import ReplayFiles, WebcastMedia
from callbridge.webcast.captions import LIVE_VTT, TRANSCRIPT
from callbridge.webcast.subtitles import MASTER, master_playlist
from tests.conftest import example_data
from tests.support.wait import wait_until
from tests.web.conftest import LiveServer


def test_players_start_from_the_master_playlist_when_there_are_captions(tmp_path: Path) -> None:
    media = WebcastMedia(tmp_path)
    live = media.live_dir(7)
    live.mkdir(parents=True)
    assert media.live_entry(7) == "index.m3u8"
    (live / MASTER).write_text(master_playlist())
    assert media.live_entry(7) == MASTER


def test_the_replay_shows_live_captions_until_the_offline_pass_replaces_them(
    tmp_path: Path,
) -> None:
    replay = ReplayFiles(tmp_path)
    assert replay.captions is None
    (tmp_path / LIVE_VTT).write_text("WEBVTT\n")
    assert replay.captions == tmp_path / LIVE_VTT
    (tmp_path / "captions.vtt").write_text("WEBVTT\n")
    assert replay.captions == tmp_path / "captions.vtt"
    assert (tmp_path / LIVE_VTT).is_file()  # kept for comparison


def test_the_live_transcript_skips_a_line_still_being_written(tmp_path: Path) -> None:
    media = WebcastMedia(tmp_path)
    event = media.live_dir(3).parent
    event.mkdir(parents=True)
    cue = {"start": 1.0, "end": 2.0, "speaker": "Speaker", "text": "T-DM1 sales", "delay": 0.5}
    (event / TRANSCRIPT).write_text(json.dumps(cue) + "\n" + '{"start": 3')
    (found,) = media.live_transcript(3)
    assert found["text"] == "T-DM1 sales" and found["index"] == 0
    assert media.live_transcript(3, "t dm1") == [found]
    assert media.live_transcript(3, "revenue") == []
    assert media.live_transcript(3, after=1) == []


def _cue(text: str, start: float) -> str:
    return json.dumps({"start": start, "end": start + 1, "speaker": "Speaker", "text": text}) + "\n"


def _messages(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The (id, data) of each Server-Sent Event on the stream."""
    event_id: str | None = None
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield event_id, json.loads(line[6:])


def test_the_console_is_sent_each_new_cue_as_the_worker_writes_it(
    live_server: LiveServer, auth: dict[str, str]
) -> None:
    """No polling: the stream waits on the transcript's folder, which need not exist yet."""
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=10) as http:
        body = json.loads(json.dumps(example_data(), default=str))
        event = http.post("/api/events", json=body).json()
        media: WebcastMedia = live_server.app.state.webcast_media
        folder = media.live_dir(event["id"]).parent
        url = f"/api/events/{event['id']}/captions/live/stream"
        with http.stream("GET", url) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            messages = _messages(stream.iter_lines())
            folder.mkdir(parents=True)  # the call starts after the console opened
            with (folder / TRANSCRIPT).open("a") as transcript:
                transcript.write(_cue("Good afternoon", 0.0))
                transcript.flush()
                first_id, first = next(messages)
                assert [c["text"] for c in first["cues"]] == ["Good afternoon"]
                transcript.write(_cue("and welcome", 1.0))
                transcript.flush()
                second_id, second = next(messages)
        assert [c["text"] for c in second["cues"]] == ["and welcome"]
        assert (first_id, second_id) == ("1", "2")
        # A browser that reconnects says where it was and gets only what is newer.
        with folder.joinpath(TRANSCRIPT).open("a") as transcript:
            transcript.write(_cue("to the call", 2.0))
        with http.stream("GET", url, headers={"Last-Event-ID": "2"}) as stream:
            _, third = next(_messages(stream.iter_lines()))
        assert [c["text"] for c in third["cues"]] == ["to the call"]
    # The last stream gone, nothing watches the folder any more.
    watches = live_server.app.state.folder_watches
    wait_until(lambda: not watches._watches, timeout=10, what="the folder watch to end")
