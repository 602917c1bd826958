"""Calls we place over TLS with SRTP, through Kamailio as the carrier, for real.

Kamailio (``kamailio-tls-modules``) listens for SIP over TLS with a
certificate for 127.0.0.1, challenges with SHA-256 digest, and relays to a
baresip callee that answers by itself and takes SRTP only (``srtp-mand``).
The bridge's trunks file has four TLS trunks to it, in priority order: one
that pins another certificate, one that expects another name, one without
the client certificate the carrier requires there (mutual TLS), and the
right one (``srtp = "required"``, with its client certificate). The first
three fail at or just after the handshake and hand the call on at once (no
waiting for a timeout); the fourth carries it.

A second number is routed to a sipp callee that answers in plain RTP: on a
trunk that requires SRTP the bridge refuses that answer and hangs up.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.baresip import Baresip, rms_windows, write_wav
from tests.support.carrier import Carrier, carrier
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.sipp import SIPP
from tests.telephony.conftest import RunningServer, need, start_server

pytestmark = pytest.mark.baresip

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "callee_plain.xml"
PASSWORD = "tls-Passw0rd-Oboe"
SECURE_CALLEE = "+19135550101"
PLAIN_CALLEE = "+19135550102"
TONE_HZ = 1000.0


@dataclass
class Setup:
    server: RunningServer
    carrier: Carrier
    baresip_port: int
    plain_port: int
    tmp: Path
    bridge_tls_port: int


def _certificate(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    need("kamailio")
    need("baresip")
    need("sipp")
    tmp = tmp_path_factory.mktemp("carrier_tls")
    cert, key = _certificate(tmp, "carrier", "IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4")
    other, _ = _certificate(tmp, "other", "IP:127.0.0.2")
    client, client_key = _certificate(tmp, "bridge-client", "DNS:bridge.example")
    port, tls_port, baresip_port, plain_port = free_port(), free_port(), free_port(), free_port()
    bridge_tls_port = free_port()
    trunks = tmp / "trunks.toml"
    # One address, one TLS identity (a connection is kept per address): the three trunks
    # reach the carrier at three of its addresses.
    common = f"""port = {tls_port}
transport = "tls"
username = "bridge"
password = "{PASSWORD}"
srtp = "required"
timeout = 8.0
"""
    trunks.write_text(
        f"""
[dial]
countries = [1]
ring_timeout = 20

[[trunk]]
name = "pinned-other"
priority = 1
addresses = ["127.0.0.2"]
tls_ca = "{other}"
{common}
[[trunk]]
name = "wrong-name"
priority = 2
addresses = ["127.0.0.3"]
tls_ca = "{cert}"
tls_server_name = "sip.other.example"
{common}
[[trunk]]
name = "no-client-cert"
priority = 3
addresses = ["127.0.0.4"]
tls_ca = "{cert}"
{common}
[[trunk]]
name = "carrier-tls"
priority = 4
addresses = ["127.0.0.1"]
tls_ca = "{cert}"
tls_cert = "{client}"
tls_key = "{client_key}"
register = true
{common}"""
    )
    trunks.chmod(0o600)
    with (
        carrier(
            tmp / "carrier",
            port,
            baresip_port,
            {"bridge": PASSWORD},
            tls=(cert, key),
            tls_port=tls_port,
            routes={PLAIN_CALLEE: plain_port},
            tls_hosts=("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"),
            tls_client_ca={"127.0.0.1": client, "127.0.0.4": client},
        ) as kamailio,
        start_server(
            tmp / "server",
            *("--trunks", str(trunks), "--sip-tls-port", str(bridge_tls_port)),
            *("--sip-tls-cert", str(cert), "--sip-tls-key", str(key)),
        ) as server,
    ):
        yield Setup(server, kamailio, baresip_port, plain_port, tmp, bridge_tls_port)


def test_a_call_placed_over_tls_with_srtp_fails_over_past_bad_certificates(setup: Setup) -> None:
    server = setup.server
    # The registration went over TLS too, naming the bridge's own TLS port for calls in.
    server.wait_for(lambda: server.stats()["registrations"] == {"carrier-tls": "registered"})
    location = setup.carrier.registered()
    assert f"sip:bridge@127.0.0.1:{setup.bridge_tls_port};transport=tls" in location, location
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    tone = setup.tmp / "tone.wav"
    t = np.arange(8000 * 30) / 8000
    write_wav(tone, (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16))
    with Baresip(
        setup.tmp / "callee",
        tone,
        user=SECURE_CALLEE,
        account=";regint=0;answermode=auto;mediaenc=srtp-mand",
        config=("module srtp.so",),
        sip_port=setup.baresip_port,
    ) as callee:
        callee.answer(seconds=40)
        time.sleep(1.0)  # baresip binds its port
        started = time.perf_counter()
        answer = server.api(
            "POST",
            f"/api/events/{event.id}/dial",
            json={"number": SECURE_CALLEE, "as_role": "speaker"},
        )
        assert answer.status_code == 202, answer.text
        server.wait_for(lambda: server.stats()["dial_out"].get("answered") == 1, timeout=20)
        print(f"dial to answer over TLS, three failovers: {time.perf_counter() - started:.2f} s")
        dial_out = server.stats()["dial_out"]
        # The two bad certificates and the missing client one cost a handshake each, not a
        # timeout.
        assert dial_out["failovers"] == 3 and dial_out.get("timed_out", 0) == 0, dial_out
        assert time.perf_counter() - started < 8.0
        secure = server.wait_for(
            lambda: (s := server.stats()["secure"])["srtp_legs"] >= 1 and s, timeout=10
        )
        assert secure["srtp_auth_failed"] == 0, secure
        # The callee keys 1 (RFC 4733 inside SRTP) and joins; its tone reaches the mix.
        # baresip's media starts a few seconds into the call on a busy machine: it keys
        # again, as a person would, until it is in.
        for _ in range(8):
            callee.send_digits("1")
            if _wait(lambda: server.participants(event.id), 2.0):
                break
        server.wait_for(
            lambda: any(
                p["role"] == "speaker" and p["talking"] for p in server.participants(event.id)
            ),
            timeout=20,
        )
        # RTCP both ways, as SRTCP on the RTP port + 1 (baresip takes no rtcp-mux here):
        # its reports name our SR (a round trip), so our SRTCP reached it and was read.
        rtcp = server.wait_for(
            lambda: (
                (r := server.stats()["rtcp"])["legs_reported"] >= 1 and r["worst_rtt_ms"] > 0 and r
            ),
            timeout=25,
        )
        print("RTCP:", rtcp)
        assert rtcp["sent"] >= 1 and rtcp["received"] >= 1
        assert rtcp["peer_worst_fraction_lost"] < 0.05 and rtcp["worst_rtt_ms"] < 1000
        scraped = httpx.get(server.metrics_url + "/metrics", timeout=10).text
        assert 'callbridge_rtcp_peer_worst{measure="round_trip_seconds"}' in scraped
        assert 'callbridge_rtcp_reports_total{direction="received"}' in scraped
        callee.stop()
        heard, rate = callee.heard()
    # "Press 1 to join" reached the callee: our SRTP decrypted on its side.
    assert rms_windows(heard, rate).max() > 500
    log = server.log()
    assert log.count("TLS certificate refused") >= 2, log[-3000:]
    assert "Hostname mismatch" in log or "IP address mismatch" in log
    assert "no-client-cert" in log and "connection lost" in log
    assert "answered through carrier-tls" in log
    assert PASSWORD not in log
    assert "SRTP is Enabled" in callee.log.read_text(errors="replace")


def _wait(predicate: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_plain_rtp_answer_on_a_trunk_that_requires_srtp_ends_the_call(setup: Setup) -> None:
    server = setup.server
    assert SIPP is not None
    event = server.create_event()
    before = server.stats()["dial_out"]
    callee = subprocess.Popen(
        [SIPP, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(setup.plain_port),
         "-mp", str(free_port()), "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"],
        stdout=(setup.tmp / "plain.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=setup.tmp,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        answer = server.api("POST", f"/api/events/{event.id}/dial", json={"number": PLAIN_CALLEE})
        assert answer.status_code == 202, answer.text
        # The answer is refused, the callee is sent BYE (its scenario ends cleanly).
        assert callee.wait(timeout=30) == 0, (setup.tmp / "plain.log").read_text()[-3000:]
    finally:
        stop_tree(callee)
    after = server.wait_for(
        lambda: (
            (d := server.stats()["dial_out"]).get("srtp_refused", 0) > before.get("srtp_refused", 0)
            and d
        )
    )
    assert after.get("answered", 0) == before.get("answered", 0)
    assert server.stats()["secure"]["srtp_refused"] >= 1
    assert "cannot be used: 488 SRTP required" in server.log()
    assert not server.participants(event.id)
