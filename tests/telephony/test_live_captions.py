"""Live captions end to end: a sipp speaker reads a paragraph, Chromium shows the cues.

The speaker's espeak-ng speech goes through the bridge's mix into the live
packager and the caption worker; the webcast page plays the LL-HLS stream
through hls.js with captions on, and the cues of its subtitle rendition are
read as they become active. Their words match the paragraph within a word
error rate bound, they show soon after the words are heard, the console's
live transcript holds the same text, a worker killed between the two halves
is started again and captions resume, and the call's live text is kept
beside the recording when it ends.

Whether the media clock keeps time as well with captions on as without (two
calls at once, one on each kind of server, p99 tick lateness side by side) is
a measurement, and is the benchmark's: ``bench/captions_bench.py --phase clock``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callbridge.store import layout
from callbridge.transcript.live import SKIPPED
from callbridge.transcript.wer import normalise, word_error_rate
from callbridge.webcast import captions
from tests.support.captions import COLLECT, PARAGRAPH, heard_at, speech_stream
from tests.support.chromium import launch
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need, start_server
from tests.transcript.speech import needs_espeak

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.serial, needs_espeak]

# The machine may be shared and slow: bounds that still fail when captions break.
MAX_WER = 0.4
# The delay goal itself: 0.49 s p50 here at load 17 (the worker's part 1.84 s; the
# listener is about 1.4 s behind the mix, which the caption pipeline spends).
MAX_DELAY_P50_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Other work on a shared test machine runs at nice 0: the worker's usual
    # nice 10 would leave it a tenth of a core there.
    with start_server(
        tmp_path_factory.mktemp("server"),
        env={"CALLBRIDGE_CAPTION_NICE": "0"},
        live_captions=True,
    ) as running:
        yield running


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with launch() as browser:
        yield browser.new_page(viewport={"width": 420, "height": 900})


def _status(server: RunningServer, event_id: int) -> dict[str, Any]:
    path = layout.event_webcast(server.data_dir, event_id) / captions.STATUS
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


def _transcript(server: RunningServer, event_id: int) -> str:
    path = layout.event_webcast(server.data_dir, event_id) / captions.TRANSCRIPT
    return path.read_text() if path.is_file() else ""


def _words(text: str) -> str:
    return " ".join(text.split())


def _settle(server: RunningServer, event_id: int, quiet_s: float = 8.0) -> list[str]:
    """The live transcript's lines once no new line has come for ``quiet_s`` seconds."""
    lines = _transcript(server, event_id).splitlines()
    since = time.monotonic()
    deadline = since + 60
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, lines
        time.sleep(0.5)
        now = _transcript(server, event_id).splitlines()
        if now != lines:
            lines, since = now, time.monotonic()
    return lines


def _kill_between_parts(
    server: RunningServer, event_id: int, last_word: str, killed: list[float]
) -> None:
    """SIGKILL the caption worker once the first part is captioned (in the pause after it)."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if last_word in _transcript(server, event_id).lower():
            break
        time.sleep(0.1)
    pid = _status(server, event_id).get("pid")
    if pid:
        os.kill(int(pid), signal.SIGKILL)
        killed.append(time.time())


SPEAKER_NAME = "Mark Chen, Chief Financial Officer"


def _name_the_speaker(server: RunningServer, event_id: int, name: str) -> None:
    def speaker() -> str | None:
        view = server.api("GET", f"/api/events/{event_id}/live").json()
        found = [p["id"] for p in view["participants"] if p["role"] == "speaker"]
        return found[0] if found else None

    participant = server.wait_for(speaker, timeout=30, interval=0.2)
    action = {"action": "name", "participant_id": participant, "name": name}
    answer = server.api("POST", f"/api/events/{event_id}/actions", json=action)
    assert answer.status_code == 200, answer.text


def test_live_captions_on_the_webcast_and_console(
    server: RunningServer, tmp_path: Path, browser_page: Any
) -> None:
    need("sipp")
    page = browser_page
    event = server.create_event(
        starts_in=timedelta(minutes=-1), registration="off", glossary=["Operating Margin"]
    )
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    live = server.wait_for(
        lambda: server.api("GET", f"/api/events/{event.id}/webcast").json()["live_playlist"],
        timeout=15,
    )
    assert live.endswith("/master.m3u8"), live

    page.goto(f"{server.http_url}/events/{event.id}/webcast")
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'live'")
    page.evaluate(COLLECT)
    page.wait_for_function(
        "() => document.getElementById('media').currentTime > 0.5", timeout=20_000
    )
    assert page.is_visible("#captions-toggle")

    packets, _ = speech_stream(event.speaker_passcode, gap_s=8.0)
    talk_seconds = packets[-1].at + 1
    killed: list[float] = []
    # The worker dies in the pause between the two parts; the second must still be captioned.
    killer = threading.Thread(
        target=_kill_between_parts,
        args=(server, event.id, "million", killed),
    )
    killer.start()
    # The moderator names the speaker once they are on the call: the cues from then on
    # carry the name.
    named = threading.Thread(target=_name_the_speaker, args=(server, event.id, SPEAKER_NAME))
    named.start()
    result = call_in(
        server.sip_target,
        tmp_path,
        packets,
        name="speaker",
        stay_ms=int(talk_seconds * 1000) + 1000,
        timeout=talk_seconds + 30,
    )
    killer.join()
    named.join()
    assert result.ok, result.output[-2000:]
    assert killed, "the caption worker was not running"

    # The worker has caught up when the live transcript stops growing.
    settled = _settle(server, event.id)
    console = server.api("GET", f"/api/events/{event.id}/captions/live").json()
    made = [c for c in console["cues"]]
    assert [c["text"] for c in made] == [json.loads(line)["text"] for line in settled]

    # What players get: every cue, but a settled reading only where it replaced the cues
    # it revises in segments not yet out ("subtitles"), and then those cues no more.
    lines = [json.loads(line) for line in settled]
    replaced = {i for line in lines if line.get("subtitles") for i in line["revises"]}
    sent = [
        c
        for i, (c, line) in enumerate(zip(made, lines, strict=True))
        if i not in replaced and line.get("subtitles", True)
    ]
    revisions = [c for c in made if c["revises"]]

    def all_shown() -> bool:
        shown = {_words(c["text"]) for c in page.evaluate("window.__cues")}
        return {_words(c["text"]) for c in sent} <= shown

    server.wait_for(all_shown, timeout=30, interval=0.5)  # the p50 delay is asserted below
    cues = page.evaluate("window.__cues")
    positions = page.evaluate("window.__positions")
    spoken = [c for c in cues if c["text"] != SKIPPED]
    skipped = len(cues) - len(spoken)
    page_text = " ".join(c["text"] for c in spoken)
    wer = word_error_rate(PARAGRAPH, page_text, numbers=True)

    # Delay: from the player reaching a cue's last words to the cue showing, and the part of
    # it that is the worker's (the cue made after the words ended, on the mix's clock).
    by_text = {_words(c["text"]): c for c in made}
    delays, worker = [], []
    for cue in spoken:
        source = by_text[_words(cue["text"])]
        end = heard_at(positions, cue["start"] + source["end"] - source["start"])
        if end is not None:
            delays.append(cue["shownAt"] / 1000 - end)
            if source["delay"] is not None:  # None: a revision
                worker.append(source["delay"])
    delays.sort()
    worker.sort()
    status = _status(server, event.id)
    report = {
        "cues": len(spoken),
        "skips": skipped,
        "wer": round(wer, 3),
        "delay_after_words_p50_s": round(delays[len(delays) // 2], 2) if delays else None,
        "worker_delay_p50_s": round(worker[len(worker) // 2], 2) if worker else None,
        "restarts": status.get("restarts"),
        "revisions": [c["text"] for c in revisions],
        "load": os.getloadavg()[0],
        "text": page_text,
    }
    print("\nLIVE CAPTIONS", json.dumps(report))
    (tmp_path / "captions.json").write_text(json.dumps(report))

    # The page shows the active cue in its caption line.
    assert any(c["shownText"] for c in cues), cues
    assert delays, report
    # The goal: the cue shows within 3 s of its last words heard, at the median.
    assert delays[len(delays) // 2] <= MAX_DELAY_P50_S, report
    if skipped == 0:
        assert wer <= MAX_WER, report
    else:
        # A machine too slow to keep up: the captions said so and skipped ahead, and what
        # they did show is the paragraph's words.
        assert SKIPPED in [c["text"] for c in cues], report
        paragraph = set(normalise(PARAGRAPH, numbers=True))
        words = normalise(page_text, numbers=True)
        assert sum(w in paragraph for w in words) >= 0.6 * len(words), report
    # The worker was started again and the second part was captioned after the kill.
    assert status.get("restarts", 0) >= 1, status
    assert any(c["shownAt"] / 1000 > killed[0] for c in cues), (killed, cues)

    # The console's live transcript holds the same text, labelled, and finds a phrase in it:
    # "Speaker" at most until the moderator named them, their name from then on.
    # (First readings in order: a revision takes the place of earlier ones, and their label.)
    labels = [c["speaker"] for c in made if c["text"] != SKIPPED and not c["revises"]]
    for revision in revisions:
        revised = [c["speaker"] for c in made if c["index"] in revision["revises"]]
        assert set(revised) == {revision["speaker"]}, (revision, made)
    assert set(labels) <= {"Speaker", SPEAKER_NAME} and labels[-1] == SPEAKER_NAME, labels
    assert labels == sorted(labels, key=lambda label: label == SPEAKER_NAME), labels
    # The event's glossary applies to live captions: its spelling wins.
    margins = [c["text"] for c in made if "operating margin" in c["text"].lower()]
    assert all("Operating Margin" in text for text in margins), margins
    found = server.api(
        "GET", f"/api/events/{event.id}/captions/live", params={"q": "earnings call"}
    ).json()
    assert found["cues"], found
    assert all("earnings call" in c["text"].lower() for c in found["cues"]), found
    newer = server.api(
        "GET", f"/api/events/{event.id}/captions/live", params={"after": console["next"]}
    ).json()
    assert newer["cues"] == []

    # The call ends: the live text is kept beside the recording for comparison.
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    recordings = layout.event_recordings(server.data_dir, event.id)
    kept = server.wait_for(lambda: list(recordings.glob("*/live.vtt")), timeout=30)
    assert "WEBVTT" in kept[0].read_text()
