"""What a carrier does wrong, for real (Kamailio as the carrier): a trunk that is down, a
wrong password on a call, a registration the registrar grants briefly or forgets.

The bridge's trunks: a TCP trunk where nothing listens (its connection is refused: the
call goes to the next trunk at once, not after a timeout), then the carrier with a
wrong password (the dial fails clearly after one challenge: no retry storm), and the
carrier with the right password (sealed in the file, opened by its key file), which
only registers. Kamailio grants 10 s whatever
is asked, so the registration is refreshed every 5 s; when the registrar forgets it,
the next refresh puts it back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callbridge.bridge.trunk_secrets import new_key_file, read_key_file, seal
from tests.support.carrier import Carrier, carrier
from tests.support.ports import free_port
from tests.telephony.conftest import RunningServer, need, start_server

PASSWORD = "right-Passw0rd-Cello"
WRONG = "wrong-Passw0rd-Cello"
CALLEE = "+19135550103"


@dataclass
class Setup:
    server: RunningServer
    carrier: Carrier
    tmp: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    need("kamailio")
    tmp = tmp_path_factory.mktemp("trunk_failures")
    port, dead = free_port(), free_port()
    trunks = tmp / "trunks.toml"
    key = tmp / "trunks.key"
    new_key_file(key)
    sealed = seal(read_key_file(key), "carrier", PASSWORD)
    trunks.write_text(
        f"""
key_file = "{key}"

[dial]
countries = [1]

[[trunk]]
name = "tcp-down"
addresses = ["127.0.0.1"]
port = {dead}
transport = "tcp"
priority = 1
timeout = 30.0

[[trunk]]
name = "wrong-password"
addresses = ["127.0.0.1"]
port = {port}
username = "bridge"
password = "{WRONG}"
priority = 2
timeout = 4.0

[[trunk]]
name = "carrier"
addresses = ["127.0.0.1"]
port = {port}
transport = "udp"
username = "bridge"
password = "{sealed}"
register = true
register_expires = 600
outbound = false
"""
    )
    trunks.chmod(0o600)
    with (
        carrier(tmp / "carrier", port, free_port(), {"bridge": PASSWORD}, max_expires=10) as kam,
        start_server(tmp / "server", "--trunks", str(trunks)) as server,
    ):
        yield Setup(server, kam, tmp)


def test_a_trunk_down_then_a_wrong_password_fail_the_dial_at_once_and_clearly(
    setup: Setup,
) -> None:
    server = setup.server
    event = server.create_event()
    started = time.perf_counter()
    answer = server.api("POST", f"/api/events/{event.id}/dial", json={"number": CALLEE})
    assert answer.status_code == 202, answer.text
    dial_out = server.wait_for(
        lambda: (d := server.stats()["dial_out"]).get("failed", 0) >= 1 and d, timeout=15
    )
    took = time.perf_counter() - started
    # The refused connection cost no timeout (30 s); the wrong password one challenge.
    assert took < 5, took
    assert dial_out["failovers"] == 1 and dial_out.get("timed_out", 0) == 0, dial_out
    assert dial_out["auth_failed"] >= 1 and dial_out.get("answered", 0) == 0, dial_out
    log = server.log()
    assert "no TCP connection to ('127.0.0.1'" in log
    assert f"to {CALLEE} failed: 407 authentication failed (wrong username or password?)" in log
    assert WRONG not in log and PASSWORD not in log
    # The carrier saw the INVITE twice (unauthenticated, then answered once), and no more
    # however long we wait.
    time.sleep(2.0)
    assert setup.carrier.log().count(f"INVITE for {CALLEE}") == 2


def test_a_registration_granted_briefly_is_refreshed_and_put_back_when_forgotten(
    setup: Setup,
) -> None:
    server, kam = setup.server, setup.carrier
    contact = f"sip:bridge@127.0.0.1:{server.sip_port}"
    # The sealed password opened: the registrar took it.
    server.wait_for(lambda: contact in kam.registered(), timeout=15)
    assert PASSWORD not in (setup.tmp / "trunks.toml").read_text()
    challenged = kam.log().count("REGISTER of bridge: challenged")
    # 10 s granted: refreshed at 5 s, so 12 s on the contact is still there, renewed twice.
    time.sleep(12.0)
    assert contact in kam.registered()
    assert kam.log().count("REGISTER of bridge: challenged") >= challenged + 2
    assert server.stats()["registrations"]["carrier"] == "registered"
    # The registrar forgets us (its binding expired, or it restarted): the next refresh,
    # within 5 s, registers again.
    kam.rpc("ul.rm", "location", "bridge")
    assert contact not in kam.registered()
    server.wait_for(lambda: contact in kam.registered(), timeout=10)
    assert server.stats()["dial_out"].get("registrations_failed", 0) == 0
