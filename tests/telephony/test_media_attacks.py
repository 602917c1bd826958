"""A stranger on 127.0.0.2 aims RTP at callers' ports; a trunk sends INVITEs that break parsers.

The server takes calls from 127.0.0.1 only (``--trunk 127.0.0.1/32``), so
127.0.0.2 is someone who found the ports. Every attack asserts the defended
outcome: keys from elsewhere are not passcode attempts, a speaker is heard
and never muted by a stranger, a listener's keys are theirs alone, and no
INVITE that fails leaves its RTP port behind.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sip.uac import OFFER, Uac
from tests.support.baresip import tone_power
from tests.support.phone import Phone, Stranger, final_response, tone
from tests.telephony.conftest import DID, RunningServer, start_server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("guarded"), "--trunk", "127.0.0.1/32") as s:
        yield s


@pytest.fixture
def stranger() -> Iterator[Stranger]:
    someone = Stranger("127.0.0.2")
    yield someone
    someone.close()


def joined(server: RunningServer, event_id: int, count: int) -> list[dict[str, Any]]:
    return server.wait_for(  # type: ignore[no-any-return]
        lambda: (found := server.participants(event_id)) and len(found) >= count and found,
        timeout=15,
    )


def test_keys_from_a_stranger_are_not_passcode_attempts(
    guarded: RunningServer, stranger: Stranger
) -> None:
    event = guarded.create_event()
    assert guarded.api("POST", f"/api/events/{event.id}/start").status_code == 200
    dropped_before = guarded.stats()["rtp_dropped_foreign"]
    wrong = ("1" if not event.passcode.startswith("1") else "2") * len(event.passcode)
    with Phone(guarded.sip_port, DID) as phone:
        phone.call()
        time.sleep(0.5)  # the phone's first packets latch its port
        assert phone.bridge_rtp is not None
        # Three wrong codes would end the call; the right one would join it.
        stranger.keys(phone.bridge_rtp, f"{wrong}#{wrong}#{wrong}#")
        stranger.keys(phone.bridge_rtp, event.speaker_passcode)
        time.sleep(1.0)
        assert guarded.participants(event.id) == []
        phone.press(event.speaker_passcode)
        (speaker,) = joined(guarded, event.id, 1)
        assert speaker["role"] == "speaker"
    audit = guarded.api("GET", f"/api/events/{event.id}/audit").json()
    assert not [e for e in audit if e["kind"] == "passcode_failed"]
    assert "wrong passcode" not in guarded.log()
    assert guarded.stats()["rtp_dropped_foreign"] >= dropped_before + 3 * len(wrong)


def test_a_stranger_cannot_speak_for_silence_or_mute_the_speaker(
    guarded: RunningServer, stranger: Stranger
) -> None:
    event = guarded.create_event()
    assert guarded.api("POST", f"/api/events/{event.id}/start").status_code == 200
    with Phone(guarded.sip_port, DID) as speaker, Phone(guarded.sip_port, DID) as listener:
        speaker.voice = tone(440)
        speaker.call()
        speaker.press(event.speaker_passcode)
        joined(guarded, event.id, 1)
        listener.call()
        listener.press(event.passcode + "#")
        joined(guarded, event.id, 2)
        time.sleep(1.0)
        mark = len(listener.heard.frames)
        dropped_before = guarded.stats()["rtp_dropped_foreign"]
        assert speaker.bridge_rtp is not None
        # A louder voice in parallel, and *6 to mute the real one.
        stranger.stream(speaker.bridge_rtp, tone(1500, level=16000))
        stranger.keys(speaker.bridge_rtp, "*6")
        time.sleep(3.0)
        heard = listener.heard.audio(mark)
        participants = guarded.participants(event.id)
    assert len(heard) >= 8000 * 2
    assert tone_power(heard, 8000, 440) > 0.5, "the speaker was not heard"
    assert tone_power(heard, 8000, 1500) < 0.01, "the stranger was heard"
    (on_stage,) = [p for p in participants if p["role"] == "speaker"]
    assert not on_stage["muted"]
    assert guarded.stats()["rtp_dropped_foreign"] > dropped_before + 100


def test_a_listeners_keys_are_their_own(guarded: RunningServer, stranger: Stranger) -> None:
    event = guarded.create_event()
    assert guarded.api("POST", f"/api/events/{event.id}/start").status_code == 200

    def queue() -> list[Any]:
        live = guarded.api("GET", f"/api/events/{event.id}/live").json()
        return list(live["queue"])

    with Phone(guarded.sip_port, DID) as listener:
        listener.call()
        listener.press(event.passcode + "#")
        joined(guarded, event.id, 1)
        assert listener.bridge_rtp is not None
        time.sleep(1.0)
        stranger.keys(listener.bridge_rtp, "*1")  # the socket is latched in the kernel
        # The caller goes silent: the socket lets go of them (LATCH_SILENCE), and
        # keys from anywhere reach the leg, which must judge them itself.
        listener.sending = False
        time.sleep(6.0)
        stranger.keys(listener.bridge_rtp, "*1")
        listener.sending = True
        time.sleep(0.5)
        assert queue() == []
        listener.press("*1")
        guarded.wait_for(lambda: len(queue()) == 1)


# -- no port leaks --------------------------------------------------------------------------

# Offers (and messages) that broke parsers: each must get a final 4xx and keep no port.
# (A Unicode digit in an optional part — one format of several, ptime, an rtpmap —
# only drops that part, and the call is answered with the rest: tests/sip/test_sdp.py.)
BAD_OFFERS = {
    "unicode digit in the port": OFFER.replace("m=audio 40000", "m=audio ²0000"),
    "unicode digit after the port": OFFER.replace("m=audio 40000", "m=audio 4000²"),
    "c= without an address": OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4"),
    "c= garbage": OFFER.replace("c=IN IP4 127.0.0.1", "c=garbage"),
    "port out of range": OFFER.replace("m=audio 40000", "m=audio 99999"),
    "no audio": OFFER.replace("m=audio 40000 RTP/AVP 0 8 101\r\n", ""),
    "garbage": "\x00\x01garbage\r\n\r\n",
}
BAD_HEADERS = {
    "unicode digit in CSeq": (b"CSeq: 1 INVITE", "CSeq: ¹ INVITE".encode()),
    "unicode digit in Max-Forwards": (b"Max-Forwards: 70", "Max-Forwards: ⁷0".encode()),
    "unicode digit in the Via port": (b"127.0.0.1:", "127.0.0.1:⁵".encode()),
}


def test_no_invite_that_fails_keeps_its_port(guarded: RunningServer) -> None:
    statuses: dict[str, set[int]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        for _ in range(10):
            cases: list[tuple[str, Uac, bytes]] = []
            for name, body in BAD_OFFERS.items():
                uac = Uac(port, number=DID.lstrip("+"))
                cases.append((name, uac, uac.invite(body)))
            for name, (good, bad) in BAD_HEADERS.items():
                uac = Uac(port, number=DID.lstrip("+"))
                cases.append((name, uac, uac.invite().replace(good, bad, 1)))
            for name, uac, data in cases:
                sock.sendto(data, ("127.0.0.1", guarded.sip_port))
                answer = final_response(sock, uac.call_id, 3.0)
                status = int(answer.split(b" ")[1]) if answer else 0
                statuses.setdefault(name, set()).add(status)
                if answer:
                    sock.sendto(uac.ack_error(), ("127.0.0.1", guarded.sip_port))
    unanswered = {name: got for name, got in statuses.items() if not got <= set(range(400, 500))}
    assert not unanswered, unanswered
    now = guarded.stats()
    assert now["rtp_ports_in_use"] == now["legs"] == 0, now
    # The server is still taking calls, and a call's port goes with its BYE.
    with Phone(guarded.sip_port, DID) as phone:
        phone.call()
        assert guarded.stats()["rtp_ports_in_use"] == 1
    guarded.wait_for(lambda: guarded.stats()["rtp_ports_in_use"] == guarded.stats()["legs"] == 0)
    assert guarded.process.poll() is None


def test_ports_are_handed_out_at_random(guarded: RunningServer) -> None:
    ports = []
    for _ in range(4):
        with Phone(guarded.sip_port, DID) as phone:
            phone.call()
            assert phone.bridge_rtp is not None
            ports.append(phone.bridge_rtp[1])
    steps = {b - a for a, b in itertools.pairwise(ports)}
    assert steps != {2}, ports  # not one after another
    assert len(set(ports)) == len(ports), ports  # a released port rests
