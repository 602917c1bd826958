"""An origin and two edges, with real callers: the speaker on one edge, listeners on both.

Listeners on both edges hear the speaker's tone (mixed on the origin, sent
once to each edge, fanned out there); ``*1`` from an edge's listener reaches
the origin's queue; the moderator opens that line and the questioner's
tone reaches a listener on the other edge, and is gone once the line is
closed; a SIGKILLed edge leaves the other edge's callers hearing the call,
and its own callers leave the origin's call; ending the call on the origin
says goodbye to the edges' callers.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.cascade.conftest import Cascade, tone_level
from tests.support.phone import Phone, tone
from tests.support.wait import wait_until
from tests.telephony.conftest import DID

SPEAKER_HZ = 440.0
QUESTION_HZ = 1000.0


def _join(phone: Phone, passcode: str) -> None:
    phone.call()
    time.sleep(1.0)
    phone.press(passcode + "#")


def _heard_since(phone: Phone, since: float) -> npt.NDArray[np.int16]:
    frames = [f for t, f in zip(phone.heard.times, phone.heard.frames, strict=False) if t >= since]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def test_the_cascade(running: Cascade) -> None:
    origin, (edge_a, edge_b) = running.origin, running.edges
    event = origin.create_event(passcode="4242")
    assert origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
    speaker_code = event.speaker_passcode
    with (
        Phone(edge_a.sip_port, DID) as speaker,
        Phone(edge_a.sip_port, DID) as listener_a,
        Phone(edge_b.sip_port, DID) as listener_b,
    ):
        speaker.voice = tone(SPEAKER_HZ)
        for phone, code in ((speaker, speaker_code), (listener_a, "4242"), (listener_b, "4242")):
            _join(phone, code)
        # Every node's callers are on the origin's console, and in its call log.
        wait_until(
            lambda: len(running.live(event.id)["participants"]) == 3, 20, "three on the call"
        )
        joins = [
            e["participant_id"]
            for e in origin.api("GET", f"/api/events/{event.id}/audit").json()
            if e["kind"] == "join"
        ]
        assert sorted(j.rsplit("@", 1)[1] for j in joins) == ["edge-a", "edge-a", "edge-b"]

        # Each node's heartbeat, on the origin's console: its role and its callers.
        def nodes() -> dict[str, Any]:
            found = origin.api("GET", "/api/bridge/nodes").json()
            return {n["node_id"]: n for n in found}

        wait_until(lambda: nodes().get("edge-a", {}).get("callers") == 2, 10, "edge-a heartbeat")
        health = nodes()
        assert {n: h["role"] for n, h in health.items()} == {
            "origin": "origin", "edge-a": "edge", "edge-b": "edge",
        }  # fmt: skip
        assert all(h["up"] for h in health.values())
        started = time.monotonic()
        time.sleep(3.0)
        for listener in (listener_a, listener_b):
            heard = _heard_since(listener, started + 1.0)
            assert len(heard) > 8000, "a listener heard nothing"
            assert tone_level(heard, SPEAKER_HZ) > 0.5, "the speaker was not heard"

        # *1 on edge b reaches the origin's queue.
        listener_b.press("*1")
        pressed = time.monotonic()
        queue = wait_until(lambda: running.live(event.id)["queue"], 5, "the queue entry")
        reached = time.monotonic() - pressed
        pid = queue[0]["participant_id"]
        assert pid.endswith("@edge-b")
        assert reached < 1.5, f"*1 took {reached:.2f} s (DTMF itself lasts about 0.3 s)"

        # The moderator opens the line: the questioner's tone reaches edge a's listener.
        speaker.sending = False
        listener_b.voice = tone(QUESTION_HZ)
        opened = origin.api(
            "POST", f"/api/events/{event.id}/actions",
            json={"action": "open_line", "participant_id": pid},
        )  # fmt: skip
        assert opened.status_code == 200, opened.text
        since = time.monotonic()
        time.sleep(3.0)
        heard = _heard_since(listener_a, since + 1.0)
        assert tone_level(heard, QUESTION_HZ) > 0.5, "the open line was not heard on edge a"
        # The questioner hears the mix without their own voice.
        own = _heard_since(listener_b, since + 1.0)
        assert tone_level(own, QUESTION_HZ) < 0.1, "the questioner heard themself"

        # The moderator closes the line: the questioner is not heard any more.
        closed = origin.api(
            "POST", f"/api/events/{event.id}/actions",
            json={"action": "close_line", "participant_id": pid},
        )  # fmt: skip
        assert closed.status_code == 200, closed.text
        since = time.monotonic()
        time.sleep(2.5)
        heard = _heard_since(listener_a, since + 1.0)
        assert len(heard) > 4000 and tone_level(heard, QUESTION_HZ) < 0.1, "the line stayed open"

        # Edge b dies: edge a's callers go on hearing the call.
        speaker.sending = True
        edge_b.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(3.0)
        heard = _heard_since(listener_a, killed + 1.0)
        assert len(heard) > 8000 and tone_level(heard, SPEAKER_HZ) > 0.5
        assert listener_a.heard.longest_gap(since=killed) < 0.5
        # The origin takes edge b's callers off its call once edge b is silent on the bus.
        wait_until(lambda: len(running.live(event.id)["participants"]) == 2, 15, "edge b's leave")
        assert all(p["id"].endswith("@edge-a") for p in running.live(event.id)["participants"])

        # The operator ends the call on the origin: edge a's callers are said goodbye to.
        assert origin.api("POST", f"/api/events/{event.id}/end").status_code == 200

        def in_calls() -> int:
            stats = edge_a.api("GET", "/api/bridge/stats").json()
            return int(stats["legs_in_conferences"])

        wait_until(lambda: in_calls() == 0, 20, "edge a's callers leaving at the end")
        assert not running.live(event.id)["participants"]
