"""Real SIP calls from sipp into a running `callbridge serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pcap import passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import RunningServer, need

pytestmark = pytest.mark.sipp


@pytest.fixture(autouse=True)
def _sipp() -> None:
    need("sipp")


def test_listener_keys_the_passcode_and_joins(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    pcap = tmp_path / "code.pcap"
    write_pcap(pcap, passcode_stream([event.passcode + "#"]))
    result = run_sipp(
        SCENARIOS / "dial_in.xml",
        server.sip_target,
        tmp_path,
        substitutions={"pcap": str(pcap), "stay_ms": "9000"},
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    seen = result.background
    assert seen, "the caller never appeared in the participant list"
    assert seen[0]["role"] == "listener"
    assert seen[0]["state"] == "connected"
    assert seen[0]["caller_id"] == "Analyst 1"
    # After the BYE the caller is gone, and the log has both ends.
    server.wait_for(lambda: not server.participants(event.id))
    left = server.participants(event.id, include_left=True)
    assert left[0]["state"] == "left"
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    assert [e["kind"] for e in audit if e["kind"] in ("join", "leave")] == ["join", "leave"]
