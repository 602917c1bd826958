"""Dial a speaker through a carrier that authenticates by credentials (Kamailio), for real.

The bridge (`callbridge serve --trunks FILE`) has four trunks: one down
(nothing answers; it is tried first), the carrier (Kamailio: SHA-256 digest
on REGISTER and INVITE, a registrar, the route to the callee), the same
carrier over TCP (it registers), and with a wrong password (it registers, and
fails). The callee is a sipp
UAS that answers, presses 1 (RFC 4733 from a pcap) and hangs up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.carrier import Carrier, carrier
from tests.support.pcap import passcode_stream, write_pcap
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.sipp import SIPP
from tests.telephony.conftest import RunningServer, need, start_server

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


def test_dial_a_speaker_who_presses_one(setup: Setup) -> None:
    server = setup.server
    event = server.create_event()
    callee = _callee(setup, stay_ms=4000)
    try:
        answer = server.api("POST", f"/api/events/{event.id}/dial", json={"number": CALLEE})
        assert answer.status_code == 202, answer.text
        assert answer.json()["number"] == CALLEE
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
