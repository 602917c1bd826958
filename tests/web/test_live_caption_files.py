"""Where the web app finds the live captions: the player's entry playlist, the replay's captions."""

from __future__ import annotations

import json
from pathlib import Path

from callbridge.web.media import ReplayFiles, WebcastMedia
from callbridge.webcast.captions import LIVE_VTT, TRANSCRIPT
from callbridge.webcast.subtitles import MASTER, master_playlist


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
