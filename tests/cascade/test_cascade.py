"""An origin and two edges, with real callers: the speaker on one edge, listeners on both.

Listeners on both edges hear the speaker's tone (mixed on the origin, sent
once to each edge, fanned out there); ``*1`` from an edge's listener reaches
the origin's queue; the moderator opens that line and the questioner's
tone reaches a listener on the other edge, and is gone once the line is
closed; a SIGKILLed edge leaves the other edge's callers hearing the call,
and its own callers leave the origin's call; ending the call on the origin
says goodbye to the edges' callers.

And a forger with the database's password (issue 27) changes nothing: what
it NOTIFYs on the bus without the nodes' key is refused and counted.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import time
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from callbridge.cascade.bus import CHANNEL, libpq_url
from callbridge.cascade.feed import mix_ssrc
from callbridge.cascade.messages import (
    EVERYONE,
    ORIGIN,
    Directive,
    Envelope,
    Feeding,
    Joined,
    Message,
    Subscribe,
    encode,
)
from callbridge.cascade.seal import Stamp, read_key, seal
from tests.cascade.conftest import Cascade, tone_level
from tests.support.phone import Phone, Stranger, tone
from tests.support.wait import wait_until
from tests.telephony.conftest import DID, RunningServer

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


class Forger:
    """A client of the cascade's database without the bus's key: it NOTIFYs what it likes on
    the bus's channel (bare, or sealed with a key of its own), and LISTENs to play back what
    the nodes said. ``sent`` counts what it sent by the reason the nodes are to refuse it."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(libpq_url(url), autocommit=True)
        self.connection.execute(f"LISTEN {CHANNEL}")
        self.sent: Counter[str] = Counter()
        self._counter = 0

    def forge(self, sender: str, to: str, message: Message) -> None:
        """``message`` as from ``sender``, twice: bare, and under a key of the forger's own."""
        text = encode(Envelope(sender, to, message))
        self.notify(text)
        self.sent["unsigned"] += 1
        self._counter += 1
        self.notify(seal(WRONG_KEY, Stamp("f" * 16, self._counter, time.time()), text))
        self.sent["forged"] += 1

    def notify(self, payload: str) -> None:
        self.connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def heard(self) -> list[str]:
        """The payloads on the channel since the last call."""
        return [n.payload for n in self.connection.notifies(timeout=0.3)]

    def close(self) -> None:
        self.connection.close()


WRONG_KEY = bytes(range(32, 64))
FORGED_HZ = 1300.0
MEDIA = re.compile(r"cascade edge (\S+): media on ([\d.]+):(\d+)")


def _bus(node: RunningServer) -> Counter[str]:
    return Counter(node.stats()["bus"])


def _media_port(edge: RunningServer) -> tuple[str, int]:
    (*_, (_, host, port)) = MEDIA.findall(edge.log())
    return host, int(port)


def _mix_frames(sock: socket.socket, ssrc: int) -> int:
    """How many RTP frames of the mix ``ssrc`` are waiting on ``sock``."""
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            data = sock.recv(2048)
            count += len(data) >= 12 and int.from_bytes(data[8:12]) == ssrc
    return count


def test_a_forger_with_the_databases_password_changes_nothing(running: Cascade) -> None:
    """Issue 27: who holds only the database's credentials (the web app does) cannot stream
    the mix anywhere, feed an edge's listeners, add speakers, hang up callers, nor replay what a
    node said; a key holder's Subscribe sends the mix to its registered host only."""
    origin, edge_a = running.origin, running.edges[0]
    event = origin.create_event(passcode="5151")
    assert origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
    forger = Forger(running.database.url)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    stranger.setblocking(False)
    port = stranger.getsockname()[1]
    registered = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # edge-c's registered host
    registered.bind(("127.0.0.1", port))
    registered.setblocking(False)
    feeder = Stranger("127.0.0.3")
    try:
        with Phone(edge_a.sip_port, DID) as listener:
            _join(listener, "5151")
            (caller,) = wait_until(
                lambda: running.live(event.id)["participants"], 20, "the listener on the call"
            )
            pid = caller["id"]
            # The listener queues a question and takes it back; the forger hears the keys go.
            listener.press("*1")
            wait_until(lambda: running.live(event.id)["queue"], 5, "the queue entry")
            listener.press("*2")
            wait_until(lambda: not running.live(event.id)["queue"], 5, "the question withdrawn")
            keys = [p for p in forger.heard() if f'"participant_id":"{pid}","key":' in p]
            assert len(keys) == 4, keys  # *, 1, *, 2
            before = {"origin": _bus(origin), "edge-a": _bus(edge_a)}

            # The mix to a stranger's address; a feed of the forger's own for edge a's
            # listeners (its Feeding told again and again, so that a genuine one between
            # cannot mask it); three fake speakers; the listener hung up.
            feeder.stream(_media_port(edge_a), tone(FORGED_HZ), ssrc=mix_ssrc(event.id))
            forger.forge("edge-a", ORIGIN, Subscribe(event.id, "127.0.0.2", port))
            for n in range(3):
                fake = Joined(event.id, f"fake{n}@edge-a", "speaker", "+1555", "", False, 1.8e9)
                forger.forge("edge-a", ORIGIN, fake)
            forger.forge("origin", "edge-a", Directive("disconnect", pid, reason="forged"))
            for _ in range(10):
                forger.forge("origin", EVERYONE, Feeding(event.id, "127.0.0.3", port, "f" * 16))
                time.sleep(0.2)
            # What the listener said, played again: *1 must not queue them a second time.
            for payload in keys[:2]:
                forger.notify(payload)
            forger.sent["replayed"] += 2

            # A key holder: as a node no operator registered, and as edge-c, registered at
            # 127.0.0.1, naming the stranger's 127.0.0.2 all the same.
            key = read_key(running.key_file)
            for counter, sender in enumerate(("edge-x", "edge-c"), 1):
                subscribe = Envelope(sender, ORIGIN, Subscribe(event.id, "127.0.0.2", port))
                stamp = Stamp("c" * 16, counter, time.time())
                forger.notify(seal(key, stamp, encode(subscribe)))
            forger.sent["unregistered"] += 1

            expected = {
                "origin": forger.sent,
                "edge-a": forger.sent - Counter({"unregistered": 1}),  # the origin's concern
            }
            for name, node in (("origin", origin), ("edge-a", edge_a)):
                wait_until(
                    lambda node=node, name=name: _bus(node) - before[name] >= expected[name],
                    10, f"{name} counting the forgeries",
                    lambda node=node, name=name: f"{_bus(node) - before[name]}",
                )  # fmt: skip
            heard_from = time.monotonic()
            time.sleep(1.5)
            feeder.close()

            # Counted exactly, and nothing else refused.
            refusals = ("unsigned", "forged", "replayed", "stale", "rejected", "unregistered")
            for name, node in (("origin", origin), ("edge-a", edge_a)):
                delta = _bus(node) - before[name]
                assert {r: delta[r] for r in refusals if delta[r]} == dict(expected[name])
            # Nothing reached the stranger; edge-c's registered host got the mix.
            assert _mix_frames(stranger, mix_ssrc(event.id)) == 0
            assert _mix_frames(registered, mix_ssrc(event.id)) > 10
            # The listener heard the call's silence, never the forger's tone.
            heard = _heard_since(listener, heard_from)
            assert len(heard) > 4000, "the listener heard nothing"
            assert tone_level(heard, FORGED_HZ) < 0.1, "edge a played the forger's feed"
            # No fake speaker, the listener still on the call, their question still withdrawn.
            live = running.live(event.id)
            assert [p["id"] for p in live["participants"]] == [pid]
            assert not live["queue"]
            assert edge_a.stats()["legs_in_conferences"] == 1
    finally:
        feeder.close()
        forger.close()
        stranger.close()
        registered.close()
