"""The data folder's layout: the names every process and test agree on."""

from __future__ import annotations

import os
from pathlib import Path

from callbridge.store import layout


def test_each_event_has_one_folder_per_tree(tmp_path: Path) -> None:
    assert layout.event_recordings(tmp_path, 7) == tmp_path / "recordings" / "event-7"
    assert layout.recording_dir(tmp_path, 7, "20261105T213000Z").parent == (
        layout.event_recordings(tmp_path, 7)
    )
    assert layout.live_dir(tmp_path, 7) == layout.event_webcast(tmp_path, 7) / "live"
    assert layout.live_dir(tmp_path, 7) == layout.live_under(layout.webcasts(tmp_path), 7)
    assert layout.deck_dir(tmp_path, 7) == tmp_path / "decks" / "event-7"


def test_event_folders_lists_events_only(tmp_path: Path) -> None:
    root = layout.recordings(tmp_path)
    assert layout.event_folders(root) == []  # no tree yet
    for event_id in (2, 10):
        layout.event_folder(root, event_id).mkdir(parents=True)
    (root / "stray").mkdir()
    (root / "event-3.txt").write_text("")
    assert [p.name for p in layout.event_folders(root)] == ["event-10", "event-2"]


def test_the_control_socket_lives_in_the_data_folder_while_its_path_fits(tmp_path: Path) -> None:
    short = tmp_path / "d"
    assert layout.control_socket(short) == (short / "run" / "control.sock").absolute()
    deep = tmp_path / ("x" * 120)
    moved = layout.control_socket(deep)
    assert moved == layout.control_socket(deep)  # both processes find the same one
    assert moved.name == "control.sock" and len(os.fsencode(moved)) <= 108
    assert layout.control_socket(deep / "other") != moved
