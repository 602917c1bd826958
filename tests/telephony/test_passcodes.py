"""Codes of every length the schema allows, and registrants' personal PINs, keyed by phone
against a real serve.

Personal PINs: Jane registers on the webcast page and reads her PIN there and from the
API. She keys it and is on the call named "Jane Smith, Acme Capital"; a
second caller on her PIN while she is on is refused; another event's PIN
and a wrong one are refused and counted by the guard like wrong passcodes;
attendance.csv names her with her firm and email.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from callbridge.store.models import CallLogRow
from tests.support.pcap import passcode_stream
from tests.support.sipp import Dialing, call_in
from tests.telephony.conftest import RunningServer, need, register_for_webcast


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


LABEL = "Jane Smith, Acme Capital"


def _pin(server: RunningServer, event_id: int, name: str, firm: str) -> str:
    """Register as a browser does; the PIN from the page and from the API (they agree)."""
    with httpx.Client(base_url=server.http_url, timeout=10) as browser:
        register_for_webcast(browser, event_id, name, firm)
        answer = browser.get(f"/api/events/{event_id}/webcast/pin")
        assert answer.status_code == 200 and "no-store" in answer.headers["cache-control"]
        pin = str(answer.json()["pin"])
        page = browser.get(f"/events/{event_id}/webcast").text
        assert f"{pin[:5]}\u00a0{pin[5:]}" in page  # two groups, never broken apart
    # A browser that has not registered gets none.
    anonymous = httpx.get(f"{server.http_url}/api/events/{event_id}/webcast/pin", timeout=10)
    assert anonymous.status_code == 403
    return pin


def _failed_since(server: RunningServer, since: datetime) -> list[dict[str, Any]]:
    with server.database.session() as session:
        rows = session.scalars(
            select(CallLogRow).where(CallLogRow.kind == "passcode_failed", CallLogRow.at >= since)
        ).all()
        return [{"caller": r.caller_id, "detail": r.detail} for r in rows]


@pytest.mark.sipp
def test_registrants_join_on_their_pins_once_at_a_time_and_are_named_in_the_exports(
    server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    event = server.create_event()
    other = server.create_event(dial_in=[{"label": "Other", "number": "+12125550100"}])
    pin = _pin(server, event.id, "Jane Smith", "Acme Capital")
    theirs = _pin(server, other.id, "Bob Stone", "Other Fund")
    assert pin != theirs and len(pin) == 10
    began = datetime.now(UTC)
    for folder in ("jane", "guesser", "second"):
        (tmp_path / folder).mkdir()

    def named() -> list[dict[str, Any]]:
        return [p for p in server.participants(event.id) if p["name"] == LABEL]

    # Silence after the keys, so the media timeout (8 s here) leaves her on.
    quiet = np.zeros(160, np.int16)
    jane = Dialing(
        server.sip_target,
        tmp_path / "jane",
        passcode_stream([pin + "#"], tone=quiet, talk_after=8.0),
        name="jane",
        stay_ms=9_000,
        timeout=40,
        background_check=named,
    )
    # A second caller on her PIN keys it once she is on: refused with its prompt, hung up.
    second = Dialing(
        server.sip_target,
        tmp_path / "second",
        passcode_stream([pin + "#"], lead_in=3.0),
        name="second",
        wait_ms=15_000,
        timeout=30,
    )
    # Meanwhile a caller keys the other event's PIN, then a wrong one, and gives up.
    wrong = "9" * 10 if not pin.startswith("9") else "8" * 10
    guesser = call_in(
        server.sip_target,
        tmp_path / "guesser",
        passcode_stream([theirs + "#", wrong + "#"], between_codes=1.0),
        name="guesser",
        stay_ms=9_000,
        timeout=40,
    )
    assert guesser.ok, guesser.report
    assert second.result().ok, second.result().report
    on_call = jane.result()
    assert on_call.ok, on_call.report
    (joined,) = on_call.background
    assert joined["role"] == "listener"

    # The guard counted both refused PINs as it counts wrong passcodes.
    failed = server.wait_for(lambda: _failed_since(server, began) or None)
    assert len(failed) == 2, failed
    assert [p["id"] for p in server.participants(other.id, include_left=True)] == []
    # Refused, the second caller never joined: one join, with her registration.
    everyone = server.participants(event.id, include_left=True)
    assert [p["name"] for p in everyone] == [LABEL]

    def her_row() -> dict[str, str] | None:
        exported = server.api("GET", f"/api/events/{event.id}/attendance.csv").text
        rows = [
            r for r in csv.DictReader(io.StringIO(exported)) if r["participant"] == joined["id"]
        ]
        return rows[0] if rows and rows[0]["left_at"] else None

    row = server.wait_for(her_row)
    assert (row["name"], row["firm"], row["email"], row["role"]) == (
        "Jane Smith",
        "Acme Capital",
        "ir@example.com",
        "listener",
    )
