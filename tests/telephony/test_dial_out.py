"""Dial a speaker through a carrier that authenticates by credentials (Kamailio), for real.

The bridge (`callbridge serve --trunks FILE`) has four trunks: one down
(nothing answers; it is tried first), the carrier (Kamailio: SHA-256 digest
on REGISTER and INVITE, a registrar, the route to the callee), the same
carrier over TCP (it registers), and with a wrong password (it registers, and
fails). The callee is a sipp
UAS that answers, presses 1 (RFC 4733 from a pcap) and hangs up.

Call me (``web.callme``, ``bridge.callme``) uses the same server and carrier:
a registrant asks from the webcast page and is called, named as themselves;
the numbers it refuses never reach the carrier.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.carrier import Carrier, carrier
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream, write_pcap
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.sipp import SIPP
from tests.telephony.conftest import RunningServer, need, register_for_webcast, start_server

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "callee.xml"
PASSWORD = "s3cret-Tr0mbone"
WRONG = "not-the-Passw0rd"
CALLEE = "+19135550100"


@dataclass
class Setup:
    server: RunningServer
    carrier: Carrier
    callee_port: int
    tmp: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    need("kamailio")
    need("sipp")
    tmp = tmp_path_factory.mktemp("dial_out")
    carrier_port, callee_port, dead_port = free_port(), free_port(), free_port()
    trunks = tmp / "trunks.toml"
    trunks.write_text(
        f"""
[dial]
countries = [1]
ring_timeout = 20

[[trunk]]
name = "down"
addresses = ["127.0.0.1"]
port = {dead_port}
priority = 1
timeout = 1.0

[[trunk]]
name = "carrier"
host = "127.0.0.1"
port = {carrier_port}
username = "bridge"
password = "{PASSWORD}"
register = true
register_expires = 120
priority = 2
timeout = 4.0

[[trunk]]
name = "carrier-tcp"
host = "127.0.0.1"
port = {carrier_port}
transport = "tcp"
username = "bridge"
password = "{PASSWORD}"
register = true
outbound = false

[[trunk]]
name = "wrong"
host = "127.0.0.1"
port = {carrier_port}
username = "bridge"
password = "{WRONG}"
register = true
outbound = false
"""
    )
    trunks.chmod(0o600)
    with (
        carrier(tmp / "carrier", carrier_port, callee_port, {"bridge": PASSWORD}) as kamailio,
        start_server(tmp / "server", "--trunks", str(trunks)) as server,
    ):
        yield Setup(server, kamailio, callee_port, tmp)


def _callee(setup: Setup, stay_ms: int) -> subprocess.Popen[bytes]:
    assert SIPP is not None
    pcap = setup.tmp / "press_one.pcap"
    write_pcap(pcap, passcode_stream(["1"], lead_in=0.6))
    scenario = setup.tmp / "callee.xml"
    text = SCENARIO.read_text().replace("{pcap}", str(pcap)).replace("{stay_ms}", str(stay_ms))
    scenario.write_text(text)
    return subprocess.Popen(
        [SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(setup.callee_port),
         "-mp", str(free_port()), "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
         "-trace_err", "-error_file", str(setup.tmp / "callee_errors.log")],
        stdout=(setup.tmp / "callee.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=setup.tmp,
    )  # fmt: skip


def test_registers_and_a_wrong_password_fails_clearly(setup: Setup) -> None:
    server = setup.server

    def settled() -> dict[str, str] | None:
        states: dict[str, str] = server.stats()["registrations"]
        return states if states and "registering" not in states.values() else None

    states = server.wait_for(settled)
    assert states == {"carrier": "registered", "carrier-tcp": "registered", "wrong": "failed"}
    # The registrar holds our contact, the bridge's SIP endpoint (where the carrier's
    # calls to us go); the wrong password is counted and said.
    location = setup.carrier.registered()
    assert f"sip:bridge@127.0.0.1:{server.sip_port}" in location
    assert f"sip:bridge@127.0.0.1:{server.sip_port};transport=tcp" in location
    assert server.stats()["dial_out"]["auth_failed"] >= 1
    assert "trunk wrong: registration failed: 401 authentication failed" in server.log()


@pytest.mark.browser
def test_dial_a_speaker_who_presses_one(setup: Setup) -> None:
    server = setup.server
    event = server.create_event()
    callee = _callee(setup, stay_ms=4000)
    try:
        # The moderator dials from the desk before the call: the number, as a speaker.
        with launch() as browser:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
            page.fill("input[name=name]", "operator")
            page.fill("input[name=password]", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_url(f"**/console/events/{event.id}")
            page.fill("#dial-number", CALLEE.replace("+1", "+1 "))
            page.select_option("#dial-role", "speaker")
            page.click("#dial-form button[type=submit]")
            page.wait_for_selector("#dial-state:has-text('Ringing')", timeout=10_000)
            # Call me, beside it: on by default, switched from the desk.
            page.wait_for_function("() => !document.getElementById('call-me-switch').disabled")
            assert page.locator("#call-me-switch").is_checked()
            page.locator("#speakers-card").screenshot(path=str(setup.tmp / "desk-dial.png"))
        # The first trunk never answers (1 s); the carrier challenges, relays, the callee
        # answers and presses 1: they are on the call as a speaker.
        joined = server.wait_for(
            lambda: [p for p in server.participants(event.id) if p["caller_id"] == CALLEE],
            timeout=15,
        )
        assert joined[0]["role"] == "speaker"
        stats = server.stats()
        assert stats["dial_out"]["failovers"] == 1 and stats["dial_out"]["answered"] == 1
        assert stats["dial_out"]["timed_out"] == 1
        assert stats["dial_setup_ms"]["count"] == 1
        # The callee hangs up through the carrier (the route set): they leave the call.
        assert callee.wait(timeout=20) == 0, (setup.tmp / "callee.log").read_text()[-3000:]
        server.wait_for(lambda: not server.participants(event.id))
    finally:
        stop_tree(callee)
    # The audit trail: who had the bridge call whom, then the callee's join.
    trail = server.wait_for(
        lambda: (
            (rows := server.api("GET", f"/api/events/{event.id}/audit").json())
            and {"dial", "join"} <= {r["kind"] for r in rows}
            and rows
        )
    )
    dialled = next(r for r in trail if r["kind"] == "dial")
    assert dialled["actor"] == "operator" and dialled["caller_id"] == CALLEE
    log = server.log()
    assert PASSWORD not in log and WRONG not in log
    assert "INVITE through trunk down" in log and "answered through carrier" in log


def test_dial_refuses_what_it_cannot_call(setup: Setup) -> None:
    server = setup.server
    event = server.create_event()
    for number in ("12345", "+1913555", "+1 (913) abc"):
        answer = server.api("POST", f"/api/events/{event.id}/dial", json={"number": number})
        assert answer.status_code == 422, answer.text
    answer = server.api("POST", f"/api/events/{event.id}/dial", json={"number": "+442079460000"})
    assert answer.status_code == 409 and "+44" in answer.json()["detail"]
    answer = server.api(
        "POST", f"/api/events/{event.id}/dial", json={"number": CALLEE, "as_role": "host"}
    )
    assert answer.status_code == 422
    assert server.api("POST", "/api/events/99999/dial", json={"number": CALLEE}).status_code == 404
    # The trunks' passwords are shown by nothing.
    assert PASSWORD not in server.api("GET", "/api/bridge/stats").text


@pytest.mark.browser
def test_call_me_rings_a_registrant_who_joins_named_and_refuses_what_it_must(setup: Setup) -> None:
    server = setup.server
    event = server.create_event()
    url = f"/api/events/{event.id}/webcast/call-me"
    with launch() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{server.http_url}/events/{event.id}/webcast")
        page.fill("#reg-name", "Jane Smith")
        page.fill("#reg-firm", "Acme Capital")
        page.fill("#reg-email", "jane@acme.example")
        page.click("form.register button[type=submit]")
        page.wait_for_selector("#callme")
        # A premium-rate number is refused beside the field, and never dialled.
        page.fill("#callme-number", "+1 900 253 0000")
        page.click("#callme button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('callme-status').textContent.includes('premium-rate')"
        )
        assert page.get_attribute("#callme-number", "aria-invalid") == "true"
        _shots(page, setup.tmp, "refused")
        # Her browser's cookie, for the requests a page would not send.
        jane = httpx.Client(base_url=server.http_url, timeout=10)
        for cookie in page.context.cookies():
            jane.cookies.set(cookie["name"], cookie["value"])
        # Another country (the event dials in on +1) and a short number: refused by
        # the bridge, naming the field; none of them reaches the carrier.
        for number, words in (("+442079460000", "+44"), ("+1911", "not a valid")):
            answer = jane.post(url, json={"number": number})
            assert answer.status_code == 422, answer.text
            (problem,) = answer.json()["detail"]
            assert problem["loc"] == ["body", "number"] and words in problem["msg"], problem
        # Only a registrant may ask.
        assert httpx.post(server.http_url + url, json={"number": CALLEE}).status_code == 403

        callee = _callee(setup, stay_ms=3000)
        try:
            asked = time.perf_counter()
            page.fill("#callme-number", "+1 (913) 555-0100")
            page.click("#callme button[type=submit]")
            page.wait_for_function("() => document.getElementById('callme').dataset.dial")
            status_url = f"{url}/{page.get_attribute('#callme', 'data-dial')}"
            # A burst from her meanwhile: refused while her call is pending.
            burst = [jane.post(url, json={"number": CALLEE}) for _ in range(3)]
            assert [a.status_code for a in burst] == [429] * 3, burst[-1].text
            assert all(int(a.headers["Retry-After"]) > 0 for a in burst)
            seen: list[str] = []
            at: dict[str, float] = {}

            def progress() -> str | None:
                state = str(jane.get(status_url).json()["state"])
                if not seen or seen[-1] != state:
                    seen.append(state)
                    at[state] = 1000 * (time.perf_counter() - asked)
                return state if state == "joined" else None

            server.wait_for(progress, timeout=20, interval=0.05)
            # The first trunk is dead (1 s); the callee keys 1 0.6 s after answering.
            print("call-me, ms from the request:", {k: round(v) for k, v in at.items()})
            print("INVITE to 200 through the carrier, ms:", server.stats()["dial_setup_ms"])
            # In the call's order, ending joined; the first poll may come after "calling"
            # on a loaded machine (the burst above ran first: answered at 1.4 s, seen first).
            order = ["calling", "ringing", "answered", "joined"]
            assert set(seen) <= set(order) and seen[-1] == "joined", seen
            assert seen == sorted(seen, key=order.index), seen
            # She is on the call as her registration names her, as her PIN would.
            (her,) = [p for p in server.participants(event.id) if p["caller_id"] == CALLEE]
            assert her["name"] == "Jane Smith, Acme Capital" and her["role"] == "listener"
            # The page follows the call (it polls once a second).
            page.wait_for_function(
                "() => document.getElementById('callme').dataset.state === 'joined'"
            )
            assert page.inner_text("#callme-status") == "You are on the call."
            _shots(page, setup.tmp, "joined")
            # Another registrant cannot read her call's progress.
            with httpx.Client(base_url=server.http_url, timeout=10) as bob:
                register_for_webcast(bob, event.id, "Bob Stone")
                assert bob.get(status_url).status_code == 404
            assert callee.wait(timeout=20) == 0, (setup.tmp / "callee.log").read_text()[-3000:]
            server.wait_for(lambda: not server.participants(event.id))
            assert jane.get(status_url).json()["state"] == "ended"
        finally:
            stop_tree(callee)

    # The operator switches call-me off during the event: refused with 409, said so.
    switch = f"/api/events/{event.id}/call-me"
    assert server.api("GET", switch).json() == {"enabled": True}
    assert server.api("POST", switch, json={"enabled": False}).json() == {"enabled": False}
    assert jane.get(url).json() == {"available": False}  # the page hides its form
    off = jane.post(url, json={"number": CALLEE})
    assert off.status_code == 409 and "switched off" in off.json()["detail"]
    assert httpx.post(server.http_url + switch, json={"enabled": True}).status_code == 401
    # A call that does not open for hours is not rung now (the callee could not join).
    later = server.create_event(starts_in=timedelta(hours=3))
    with httpx.Client(base_url=server.http_url, timeout=10) as early:
        register_for_webcast(early, later.id, "Early Bird")
        answer = early.post(f"/api/events/{later.id}/webcast/call-me", json={"number": CALLEE})
        assert answer.status_code == 409 and "opens 30 minutes" in answer.json()["detail"]

    # Every refusal is in the audit trail, with why; the dial names the registrant.
    def trail() -> list[dict[str, Any]] | None:
        rows = server.api("GET", f"/api/events/{event.id}/audit").json()
        kinds = [r["kind"] for r in rows]
        return rows if kinds.count("call_me_refused") == 7 and "call_me_switched" in kinds else None

    rows = server.wait_for(trail)
    jane.close()
    reasons = [r["detail"]["reason"] for r in rows if r["kind"] == "call_me_refused"]
    assert reasons == [
        "number_type",
        "country",
        "bad_number",
        "pending",
        "pending",
        "pending",
        "off",
    ]
    (dialled,) = [r for r in rows if r["kind"] == "dial"]
    assert dialled["caller_id"] == CALLEE and dialled["role"] == "registrant"
    assert dialled["actor"] == f"call-me: registrant {dialled['detail']['registrant']}"
    refused = [r for r in rows if r["kind"] == "call_me_refused"]
    assert {r["detail"]["registrant"] for r in refused} == {dialled["detail"]["registrant"]}
    (joined,) = [r for r in rows if r["kind"] == "join"]
    assert joined["detail"]["registrant"] == dialled["detail"]["registrant"]
    # The carrier saw her number's INVITE and none of the refused ones.
    carried = setup.carrier.log()
    assert "INVITE for +19135550100" in carried
    for number in ("+19002530000", "+442079460000", "+1911"):
        assert f"INVITE for {number}" not in carried


def _shots(page: Any, folder: Path, name: str) -> None:
    """The call-me form at a laptop's size and a phone's, for a person to look at."""
    for width, height in ((1366, 768), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#callme").scroll_into_view_if_needed()
        page.screenshot(path=str(folder / f"callme-{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1366, "height": 768})
