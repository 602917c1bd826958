"""baresip, a second and independent SIP client, dials in and records what it hears."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.baresip import Baresip, rms_windows, tone_power, write_wav
from tests.support.pcap import passcode_stream
from tests.support.ports import free_port
from tests.support.sipp import SCENARIOS, Dialing, run_sipp
from tests.telephony.conftest import DID, RunningServer, need, start_server

pytestmark = pytest.mark.baresip

# This module's server also serves SIP over TLS, takes SRTP when offered, and
# requires it of the "trunk" at 127.0.0.2 (the plain tests above call from 127.0.0.1).
STRICT_TRUNK = "127.0.0.2"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (an EC key: made at once)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path], tls_port: int
) -> Iterator[RunningServer]:
    cert, key = certificate
    with start_server(
        tmp_path_factory.mktemp("server"),
        *("--sip-tls-port", str(tls_port), "--sip-tls-cert", str(cert), "--sip-tls-key", str(key)),
        *("--srtp", "offered", "--srtp-trunk", f"{STRICT_TRUNK}/32=required"),
    ) as running:
        yield running


TONE_HZ = 1000.0


def tone_frame() -> np.ndarray:
    t = np.arange(160) / 8000
    return (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


def test_listener_hears_the_prompt_then_the_speaker(server: RunningServer, tmp_path: Path) -> None:
    need("baresip")
    need("sipp")
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

    # The speaker: sipp keys the speaker code, then "talks" a 1 kHz tone.
    speaker = Dialing(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode], tone=tone_frame(), talk_after=16),
        name="speaker",
        stay_ms=18000,
        timeout=40,
    )

    # The listener: baresip dials, keys the listener code, records what it hears.
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000 * 20, dtype=np.int16))
    with Baresip(tmp_path / "baresip", silence) as phone:
        phone.dial(f"sip:{DID[1:]}@127.0.0.1:{server.sip_port}", seconds=16)
        time.sleep(2.0)  # into the welcome prompt: the keys barge in
        phone.send_digits(event.passcode + "#")
        server.wait_for(
            lambda: any(p["role"] == "listener" for p in server.participants(event.id)),
            timeout=15,
        )
        phone.wait(timeout=30)
        heard, rate = phone.heard()
    spoke = speaker.result(timeout=60)
    assert spoke.ok, spoke.output[-2000:]

    levels = rms_windows(heard, rate)
    # The welcome prompt in the first seconds: speech, well above silence.
    assert levels[3:15].max() > 500, levels[:20]
    # Later, after joining: the speaker's tone dominates what the listener hears.
    joined = heard[int(rate * 10.5) : int(rate * 14.5)]
    assert len(joined) > rate * 3, len(heard) / rate
    assert tone_power(joined, rate, TONE_HZ) > 0.6
    roles = {p["role"] for p in server.participants(event.id, include_left=True)}
    assert roles == {"speaker", "listener"}


def test_a_caller_over_tls_with_srtp_is_heard_and_hears_the_bridge(
    server: RunningServer, certificate: tuple[Path, Path], tls_port: int, tmp_path: Path
) -> None:
    """baresip dials over TLS with SRTP mandatory: keys, audio both ways, all encrypted."""
    need("baresip")
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    tone = tmp_path / "tone.wav"
    t = np.arange(8000 * 20) / 8000
    write_wav(tone, (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16))
    with Baresip(
        tmp_path / "baresip",
        tone,
        account=";regint=0;mediaenc=srtp-mand",
        config=("module srtp.so", f"sip_cafile {certificate[0]}"),
    ) as phone:
        phone.dial(f"sip:{DID[1:]}@127.0.0.1:{tls_port};transport=tls", seconds=30)
        # The keys are RFC 4733 events inside SRTP: heard only if decrypted. They go once
        # the TLS call is up with its SRTP leg (a busy machine takes seconds), into the
        # welcome prompt.
        server.wait_for(lambda: server.stats()["secure"]["srtp_legs"] >= 1, timeout=40)
        time.sleep(1.0)
        phone.send_digits(event.speaker_passcode + "#")
        # The speaker's tone reaches the mix (decrypted and authenticated).
        server.wait_for(
            lambda: any(
                p["role"] == "speaker" and p["talking"] for p in server.participants(event.id)
            ),
            timeout=20,
        )
        secure = server.stats()["secure"]
        phone.wait(timeout=30)
        heard, rate = phone.heard()
    assert secure["srtp_legs"] == 1, secure
    assert secure["tls_handshakes"] >= 1, secure
    assert secure["srtp_auth_failed"] == 0, secure
    # The bridge's welcome prompt reached baresip: our SRTP decrypted on its side.
    assert rms_windows(heard, rate)[3:15].max() > 500
    log = phone.log.read_text(errors="replace")
    assert "SRTP is Enabled" in log, log[-2000:]


def test_a_plain_rtp_offer_from_a_trunk_that_requires_srtp_gets_488(
    server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    before = server.stats()["secure"]["srtp_refused"]
    refused = run_sipp(
        SCENARIOS / "srtp_refused.xml",
        server.sip_target,
        tmp_path,
        timeout=20,
        local_ip=STRICT_TRUNK,
    )
    assert refused.ok, refused.report
    assert server.stats()["secure"]["srtp_refused"] == before + 1
