"""Two origins (the second `serve --role origin --standby`) and an edge, on one PostgreSQL.

The active origin's every process is SIGKILLed at once mid-call: the standby
takes the lease within a second, the edge plays its mix, and the edge's
listener hears the speaker (on the edge) with no pause of a second or more.
What the moderator did on the dead origin (the lock, the speaker's name, a
listener's place in the queue) is on the new active origin's console. The
killed origin, started again, comes back as the standby. Through Varnish in
front of both origins, the live webcast goes on across the switch: for a
player polling the playlist and for a listener's page in Chromium (hls.js).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from callbridge.store.db import Database
from callbridge.webcast.playlist import parse
from tests.cascade.conftest import shared_store, tone_level
from tests.support.chromium import launch
from tests.support.nodes import start_again, start_node
from tests.support.phone import Phone, tone
from tests.support.procs import is_running, process_tree, stop_tree
from tests.support.wait import wait_until
from tests.telephony.conftest import DID, RunningServer, _up, free_port, need

pytestmark = [pytest.mark.postgres, pytest.mark.serial]

SPEAKER_HZ = 440.0
PACKAGED = re.compile(r"replay packaged: \d+ s of audio")
RECORDED = re.compile(r"event \d+: recording assembled, (\d+) s in ")
LEASE = re.compile(r"^(\S+ \S+) WARNING .* lease (\w+) -> (\w+) \(epoch (\d+)", re.MULTILINE)


def _node(
    tmp: Path, url: str, database: Database, token: str, name: str, rtp_low: int, *extra: str
) -> RunningServer:
    return start_node(
        url, database, token, tmp / name, tmp / f"{name}.log",
        http=("127.0.0.1", free_port()), sip=("127.0.0.1", free_port()),
        rtp_ports=f"{rtp_low}-{rtp_low + 99}", media_timeout=20,
        extra=("--node-id", name, "--bus-key-file", str(tmp / "bus.key"), *extra),
    )  # fmt: skip


def _leases(server: RunningServer) -> list[tuple[float, str, str, int]]:
    """Each change of the node's lease in its log: (POSIX time, from, to, epoch)."""
    return [
        (datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f").timestamp(), before, after, int(epoch))
        for at, before, after, epoch in LEASE.findall(server.log())
    ]


def _state(server: RunningServer) -> str | None:
    leases = _leases(server)
    return leases[-1][2] if leases else None


@contextlib.contextmanager
def _pair(tmp: Path) -> Iterator[tuple[list[RunningServer], RunningServer, list[Any]]]:
    with shared_store(tmp) as store:
        url, database, token = store.url, store.database, store.token
        processes: list[Any] = []
        try:
            rtp_low = 36000 + (os.getpid() % 50) * 300
            origin = (
                "--role", "origin", "--edge", "edge-a=127.0.0.1", "--trusted-proxy=127.0.0.1/32",
            )  # fmt: skip
            first = _node(tmp, url, database, token, "origin-a", rtp_low, *origin)
            processes.append(first.process)
            first.wait_for(lambda: _state(first) == "active", timeout=240)
            second = _node(
                tmp, url, database, token, "origin-b", rtp_low + 100, *origin, "--standby"
            )
            edge = _node(tmp, url, database, token, "edge-a", rtp_low + 200, "--role", "edge")
            processes += [second.process, edge.process]
            for node in (first, second, edge):
                node.wait_for(lambda node=node: _up(node), timeout=240)  # type: ignore[misc]
            second.wait_for(lambda: _state(second) == "standby", timeout=30)
            yield [first, second], edge, processes
        finally:
            for process in processes:
                stop_tree(process)


def _recent(phone: Phone, seconds: float) -> npt.NDArray[np.int16]:
    since = time.monotonic() - seconds
    frames = [f for t, f in zip(phone.heard.times, phone.heard.frames, strict=False) if t >= since]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def _hears_speaker(phone: Phone) -> bool:
    heard = _recent(phone, 0.5)
    return len(heard) >= 3200 and tone_level(heard, SPEAKER_HZ) > 0.5


def _longest_pause(phone: Phone, since: float, until: float) -> float:
    times = [t for t in phone.heard.times if since - 0.1 <= t <= until]
    return max((b - a for a, b in itertools.pairwise(times)), default=until - since)


def _heard_across_the_switch(
    listener: Phone, standby: RunningServer, lost: float, through: str
) -> float:
    """Once ``standby`` is active and the speaker heard ``through`` it (3 s on), the
    listener's longest pause since the active origin was lost (monotonic ``lost``)."""
    wait_until(lambda: _state(standby) == "active", 10, "the standby active")
    wait_until(
        lambda: time.monotonic() - lost > 3.0 and _hears_speaker(listener),
        20,
        f"the speaker heard through {through}",
    )
    return _longest_pause(listener, lost, time.monotonic())


def _back_as_the_standby(origin: RunningServer, processes: list[Any]) -> RunningServer:
    """``origin`` (lost) started again: it takes the standby's part, never the active one."""
    told = len(_leases(origin))
    again = start_again(origin)
    processes.append(again.process)
    again.wait_for(lambda: len(_leases(again)) > told, timeout=120)
    time.sleep(2.0)
    assert [after for _, _, after, _ in _leases(again)[told:]] == ["standby"]
    return again


def _console(server: RunningServer, event_id: int) -> dict[str, Any] | None:
    try:
        response = server.api("GET", f"/api/events/{event_id}/live", timeout=2)
    except Exception:
        return None
    if response.status_code != 200:
        return None
    result: dict[str, Any] = response.json()
    return result


def _answer(server: RunningServer, path: str) -> int:
    return httpx.get(server.http_url + path, timeout=5).status_code


def _moderator_state(server: RunningServer, event_id: int) -> tuple[Any, ...] | None:
    """What must survive: the lock, the names, who is muted, the queue's order."""
    live = _console(server, event_id)
    if live is None:
        return None
    people = sorted((p["id"], p["name"], p["muted"]) for p in live["participants"])
    queue = [entry["participant_id"] for entry in live["queue"]]
    return live["locked"], people, queue


def _kill_all_at_once(server: RunningServer) -> None:
    tree = process_tree(server.process.pid)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    wait_until(lambda: not any(is_running(pid) for pid in tree), 20, "the killed tree gone")


def test_the_standby_takes_over_a_killed_origin_within_a_second(tmp_path: Path) -> None:
    with _pair(tmp_path) as ((first, second), edge, processes):
        event = first.create_event(passcode="5151", registration="off")
        assert first.api("POST", f"/api/events/{event.id}/start").status_code == 200
        started = time.monotonic()
        assert event.speaker_passcode is not None
        with Phone(edge.sip_port, DID) as speaker, Phone(edge.sip_port, DID) as listener:
            speaker.voice = tone(SPEAKER_HZ)
            for phone, code in ((speaker, event.speaker_passcode), (listener, "5151")):
                phone.call()
                time.sleep(1.0)
                phone.press(code + "#")
            wait_until(
                lambda: len((_console(first, event.id) or {}).get("participants", [])) == 2,
                20,
                "both on the active origin's console",
            )
            wait_until(lambda: _hears_speaker(listener), 15, "the speaker heard on the edge")
            # The moderator's doings, on the active origin.
            listener.press("*1")
            live = wait_until(lambda: _console(first, event.id)["queue"], 10, "the queue entry")
            people = {p["role"]: p["id"] for p in _console(first, event.id)["participants"]}  # type: ignore[index]
            for action in (
                {"action": "name", "participant_id": people["speaker"], "name": "Mark Chen, CFO"},
                {"action": "lock"},
                {"action": "mute", "participant_id": people["listener"]},
            ):
                answer = first.api("POST", f"/api/events/{event.id}/actions", json=action)
                assert answer.status_code == 200, answer.text
            before = _moderator_state(first, event.id)
            assert before is not None and before[0] is True and live
            # Replicated to the standby as it changed.
            wait_until(
                lambda: _moderator_state(second, event.id) == before,
                10,
                "the standby's console as the active one's",
                lambda: f"{_moderator_state(second, event.id)} != {before}",
            )
            wait_until(lambda: _hears_speaker(listener), 10, "the speaker still heard")

            killed_wall, killed = time.time(), time.monotonic()
            _kill_all_at_once(first)
            pause = _heard_across_the_switch(listener, second, killed, "the new active origin")
            took_over = next(at for at, _, after, _ in _leases(second) if after == "active")
            assert _moderator_state(second, event.id) == before
            assert pause < 1.0, f"the listener heard nothing for {pause * 1000:.0f} ms"

            # The killed origin comes back: as the standby, never a second active one.
            again = _back_as_the_standby(first, processes)
            # It is told what was done on the call before it came: ready to take over again.
            wait_until(
                lambda: _moderator_state(again, event.id) == before,
                20,
                "the returned standby's console as the active one's",
                lambda: f"{_moderator_state(again, event.id)} != {before}",
            )
            assert _state(second) == "active"
            assert _hears_speaker(listener)
        # The call ends on the new active origin: its recording, made in parallel while it
        # was the standby, holds the whole call, from before the kill too.
        assert second.api("POST", f"/api/events/{event.id}/end").status_code == 200
        length = time.monotonic() - started
        assembled = second.wait_for(lambda: RECORDED.search(second.log()), timeout=60)
        recorded = float(assembled.group(1))
        assert recorded > length - 3.0, (recorded, length)
        # The returned origin's replay has the stretch it was down for missing: it sends the
        # replay's listeners (through the cache: the cache's retry) to the one holding it all.
        for origin in (second, again):
            origin.wait_for(lambda origin=origin: PACKAGED.search(origin.log()), timeout=60)
        replay = f"/webcast/{event.id}/replay/index.m3u8"
        whole = wait_until(
            lambda: _answer(second, replay) == 200 and _answer(again, replay) == 503,
            30,
            "the replay served by the origin holding it all",
            lambda: f"{_answer(second, replay)} {_answer(again, replay)}",
        )
        assert whole
        print(
            f"\nSTANDBY TAKEOVER: the standby was active {took_over - killed_wall:.2f} s after"
            f" the active origin's SIGKILL; the edge's listener's longest pause:"
            f" {pause * 1000:.0f} ms; the new active origin's recording: {recorded:.0f} s of a"
            f" {length:.0f} s call"
        )


class _Player:
    """Reloads the live playlist through the cache every 100 ms, as a player does, and keeps
    what each answer said: its status, the newest part's place, each segment's date-time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, int, int]] = []  # (monotonic, status, place of newest part)
        self.dated: dict[str, list[datetime]] = {}  # segment → the date-times it was given
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Player:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    answer = client.get(self.url)
                except httpx.HTTPError:
                    self.seen.append((time.monotonic(), 0, -1))
                    continue
                place = -1
                if answer.status_code == 200:
                    playlist = parse(answer.text)
                    parts = len(playlist.partial.parts) if playlist.partial else 0
                    place = (playlist.media_sequence + len(playlist.segments)) * 100 + parts
                    for segment in playlist.segments:
                        if segment.program_date_time is not None:
                            self.dated.setdefault(segment.uri, []).append(segment.program_date_time)
                self.seen.append((time.monotonic(), answer.status_code, place))
                self._stop.wait(0.1)

    def longest_stall(self, since: float) -> float:
        """The longest time from ``since`` on without a newer part in the playlist."""
        longest, last_new, newest = 0.0, since, -1
        for at, status, place in self.seen:
            if status == 200 and place > newest:
                if at >= since:
                    longest = max(longest, at - last_new)
                    last_new = at
                newest = place
        return max(longest, self.seen[-1][0] - last_new)


# Every 100 ms, the page's clock and the audio's position (what a listener hears move on).
LISTEN_PROGRESS = """() => {
  window.__progress = [];
  const media = document.getElementById('media');
  setInterval(() => window.__progress.push([performance.now(), media.currentTime]), 100);
}"""


def _longest_standstill(samples: list[list[float]], since_ms: float) -> float:
    """The longest time (s) from ``since_ms`` on that the audio's position did not move."""
    longest, moved_at, position = 0.0, since_ms, None
    for at, current in samples:
        if position is None or current > position + 0.01:
            if at >= since_ms:
                longest = max(longest, at - moved_at)
            moved_at, position = at, current
    return max(longest, samples[-1][0] - moved_at) / 1000


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _cache(origins: list[RunningServer], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "callbridge", "cache", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    command += [f"--origin={o.http_url.removeprefix('http://')}" for o in origins]
    process = subprocess.Popen(
        command, stdout=(tmp / "cache.log").open("wb"), stderr=subprocess.STDOUT
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.browser
def test_the_webcast_through_the_cache_goes_on_across_the_switch(tmp_path: Path) -> None:
    need("varnishd")
    with _pair(tmp_path) as ((first, second), _edge, processes):
        cache, cache_url = _cache([first, second], tmp_path)
        processes.append(cache)
        event = first.create_event(starts_in=timedelta(minutes=-1), registration="off")
        assert first.api("POST", f"/api/events/{event.id}/start").status_code == 200
        playlist = f"/webcast/{event.id}/live/index.m3u8"
        for origin in (first, second):  # both package the call
            origin.wait_for(lambda origin=origin: _ok(origin.http_url + playlist), timeout=30)
        wait_until(
            lambda: _ok(cache_url + playlist),
            60,
            "the playlist through the cache",
            lambda: (tmp_path / "cache.log").read_text()[-2000:],
        )
        with launch() as browser, _Player(cache_url + playlist) as player:
            # A listener in Chromium (hls.js) through the cache, beside the polling player.
            page = browser.new_page()
            page.goto(f"{cache_url}/events/{event.id}/webcast")
            page.wait_for_function(
                "() => document.getElementById('webcast').dataset.playing === 'live'",
                timeout=30_000,
            )
            page.wait_for_function(
                "() => document.getElementById('media').currentTime > 0.5", timeout=30_000
            )
            page.evaluate(LISTEN_PROGRESS)
            time.sleep(4.0)
            killed = time.monotonic()
            killed_in_page = page.evaluate("performance.now()")
            _kill_all_at_once(first)
            wait_until(lambda: _state(second) == "active", 10, "the standby active")
            time.sleep(6.0)
            heard = page.evaluate(
                "() => ({samples: window.__progress, paused: document.getElementById('media')"
                ".paused})"
            )
        failed = [(round(at - killed, 2), status) for at, status, _ in player.seen if status != 200]
        stall = player.longest_stall(killed)
        places = [place for _, status, place in player.seen if status == 200]
        # The playlist went on: no failed reload, never back, no stall a player notices.
        assert not failed, failed
        assert places == sorted(places), "the playlist went back"
        assert stall < 1.0, f"no new part for {stall * 1000:.0f} ms"
        # The browser's player played on: its position never stood still for a second.
        browser_stall = _longest_standstill(heard["samples"], killed_in_page)
        assert not heard["paused"], heard
        assert heard["samples"][-1][1] > heard["samples"][0][1] + 8, heard["samples"][-3:]
        assert browser_stall < 1.0, f"the page's audio stood still {browser_stall * 1000:.0f} ms"
        # Each segment was dated alike by both origins (the first ones by the killed one).
        for uri, dates in player.dated.items():
            assert max(dates) - min(dates) <= timedelta(milliseconds=1), (uri, dates)
        print(
            f"\nWEBCAST ACROSS THE SWITCH: {len(player.seen)} reloads through Varnish, none"
            f" failed; the longest time without a new part after the kill: {stall * 1000:.0f} ms;"
            f" the page's audio stood still at most {browser_stall * 1000:.0f} ms"
        )
