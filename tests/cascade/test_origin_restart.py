"""The origin dies mid-call and starts again: its media process, started again by its
supervisor, or the whole of `callbridge serve`, SIGKILLed and started again by hand.

The new process knows nobody: it announces itself on the bus (a new
incarnation), the edges tell it their callers again and ask for the mix, and
the edges' listeners hear the speaker (on an edge too) again; the console
lists every caller once more, ``*1`` reaches the queue, and the call log
has one join per caller, not two.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.cascade.conftest import Cascade, tone_level
from tests.support.nodes import start_again
from tests.support.phone import Phone, tone
from tests.support.procs import is_running, process_tree
from tests.support.wait import wait_until
from tests.telephony.conftest import DID

SPEAKER_HZ = 440.0
MEDIA_PID = re.compile(r"the media process is pid (\d+)")
INCARNATION = re.compile(r"^(\S+ \S+) INFO .* is incarnation ", re.MULTILINE)


def _join(phone: Phone, passcode: str) -> None:
    phone.call()
    time.sleep(1.0)
    phone.press(passcode + "#")


def _recent(phone: Phone, seconds: float) -> npt.NDArray[np.int16]:
    since = time.monotonic() - seconds
    frames = [f for t, f in zip(phone.heard.times, phone.heard.frames, strict=False) if t >= since]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def _hears_speaker(phone: Phone) -> bool:
    """Whether the last half second the phone heard is mostly the speaker's tone."""
    heard = _recent(phone, 0.5)
    return len(heard) >= 3200 and tone_level(heard, SPEAKER_HZ) > 0.5


def _longest_pause(phone: Phone, since: float) -> float:
    """The longest pause between two frames the phone heard from ``since`` on, in seconds."""
    times = [t for t in phone.heard.times if t >= since - 0.1]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _heard(phone: Phone) -> str:
    heard = _recent(phone, 0.5)
    return f"(heard {len(heard)} samples in 0.5 s, tone {tone_level(heard, SPEAKER_HZ):.2f})"


def _alive(pids: list[int]) -> str:
    """What is left of ``pids``: each one's state and command line, to say why it stays."""
    left = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        left.append(f"{pid} {state} {command.decode(errors='replace')[:120]}")
    return "; ".join(left)


def _media_pids(log: str) -> list[int]:
    return [int(pid) for pid in MEDIA_PID.findall(log)]


def _kill_media(running: Cascade) -> None:
    """SIGKILL the origin's media process; its supervisor starts another."""
    *_, media = _media_pids(running.origin.log())  # the one running now
    os.kill(media, signal.SIGKILL)


def _kill_and_start_again(running: Cascade) -> None:
    """SIGKILL the origin's `callbridge serve` (its children go with it); start it again."""
    old = running.origin
    tree = process_tree(old.process.pid)
    old.process.send_signal(signal.SIGKILL)
    old.process.wait(timeout=10)
    wait_until(
        lambda: not any(is_running(pid) for pid in tree),
        20,
        "the children gone",
        lambda: _alive(tree),
    )
    running.origin = start_again(old)
    running.others.append(running.origin.process)


@pytest.mark.parametrize(
    ("kill", "passcode"),
    [
        pytest.param(_kill_media, "4242", id="media"),
        pytest.param(_kill_and_start_again, "4343", id="serve"),
    ],
)
def test_a_restarted_origin_learns_the_edges_callers_again(
    running: Cascade, kill: Callable[[Cascade], None], passcode: str
) -> None:
    origin, (edge_a, edge_b) = running.origin, running.edges
    event = origin.create_event(passcode=passcode)
    assert origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
    assert event.speaker_passcode is not None
    with (
        Phone(edge_a.sip_port, DID) as speaker,
        Phone(edge_a.sip_port, DID) as listener_a,
        Phone(edge_b.sip_port, DID) as listener_b,
    ):
        speaker.voice = tone(SPEAKER_HZ)
        for phone, code in (
            (speaker, event.speaker_passcode), (listener_a, passcode), (listener_b, passcode),
        ):  # fmt: skip
            _join(phone, code)
        wait_until(
            lambda: len(running.live(event.id)["participants"]) == 3, 20, "three on the call"
        )
        before = {p["id"]: p["role"] for p in running.live(event.id)["participants"]}
        for listener in (listener_a, listener_b):
            wait_until(lambda listener=listener: _hears_speaker(listener), 10, "the speaker heard")

        starts = len(_media_pids(origin.log()))
        incarnations = len(INCARNATION.findall(origin.log()))
        kill(running)
        killed = time.monotonic()
        wait_until(lambda: len(_media_pids(origin.log())) > starts, 60, "the media process again")
        restarted = time.monotonic()
        wait_until(lambda: len(INCARNATION.findall(origin.log())) > incarnations, 60, "the new bus")
        # When the new process's bus was up, on the log's clock, brought to the monotonic one.
        (*_, bus_up) = INCARNATION.findall(origin.log())
        wall = datetime.strptime(bus_up, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        bus_up_at = wall - (time.time() - time.monotonic())
        # Every listener hears the speaker through the new process: half a second of the
        # tone, all of it after that process's bus was up (the old one is dead).
        for listener in (listener_a, listener_b):
            wait_until(
                lambda listener=listener: (
                    time.monotonic() - 0.5 > bus_up_at and _hears_speaker(listener)
                ),
                40,
                "the speaker again",
                lambda listener=listener: _heard(listener),
            )
        heard_again = time.monotonic()
        # What the listeners missed: the longest pause between frames after the kill (the
        # supervisor's fork start and the edges' buffers can make it none at all).
        pause = max(_longest_pause(listener, since=killed) for listener in (listener_a, listener_b))

        # The console lists every caller again, as they were.
        def everyone() -> dict[str, str] | None:
            try:
                response = origin.api("GET", f"/api/events/{event.id}/live")
            except httpx.HTTPError:
                return None  # the web app is not up yet
            if response.status_code == 503:
                return None  # the web app has yet to reach the new media process
            response.raise_for_status()
            found = {p["id"]: p["role"] for p in response.json()["participants"]}
            return found if found == before else None

        wait_until(everyone, 60, "every edge caller on the restarted origin's console")
        # *1 from an edge's listener reaches the new origin's queue.
        listener_b.press("*1")
        queue = wait_until(lambda: running.live(event.id)["queue"], 5, "the queue entry")
        assert queue[0]["participant_id"].endswith("@edge-b")
        # One join per caller in the call log, though the new origin was told them again.
        joins = [
            e["participant_id"]
            for e in origin.api("GET", f"/api/events/{event.id}/audit").json()
            if e["kind"] == "join"
        ]
        assert sorted(joins) == sorted(before), joins
        print(
            f"\nORIGIN RESTART ({kill.__name__}): the media process was started again"
            f" {restarted - killed:.1f} s"
            f" after SIGKILL; the edges' listeners heard the speaker again"
            f" {heard_again - killed:.1f} s after the kill (half a second of the new process's"
            f" mix: {heard_again - bus_up_at:.2f} s after its bus was up); the longest pause"
            f" a listener heard: {pause * 1000:.0f} ms"
        )
