"""Codes of every length the schema allows can be keyed by phone, against a real serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need


def _dial(
    server: RunningServer, tmp_path: Path, keys: str, event_id: int
) -> list[dict[str, object]]:
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([keys]),
        name=f"keys-{len(keys)}",
        stay_ms=5000,
        timeout=40,
        background_check=lambda: server.participants(event_id),
    )
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    seen: list[dict[str, object]] = result.background
    return seen


@pytest.mark.sipp
def test_a_twelve_digit_speaker_code_and_a_four_digit_listener_code_on_one_number(
    server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    event = server.create_event(passcode="4242", speaker_passcode="424242424242")
    # The longest code on the number ends a code without '#'.
    speaker = _dial(server, tmp_path, event.speaker_passcode, event.id)
    assert speaker and speaker[0]["role"] == "speaker"
    server.wait_for(lambda: not server.participants(event.id))
    # A shorter code ends on '#' (or on silence).
    listener = _dial(server, tmp_path, event.passcode + "#", event.id)
    assert listener and listener[0]["role"] == "listener"
