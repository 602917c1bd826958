"""A listed speaker is named as they dial in: sipp against a real `callbridge serve`.

The event lists Mark Chen, Chief Financial Officer, with his phone. A sipp
caller keys the speaker passcode while the trunk (loopback, trusted) asserts
that number; the participants API shows him named from the moment he is
on the call, the audit trail says the speaker list named him, and the
recording's manifest (whence the transcript's and captions' labels) carries
the name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from callbridge.media.recording import MANIFEST
from callbridge.store import layout
from tests.support.pcap import passcode_stream
from tests.support.sipp import Caller, call_in
from tests.telephony.conftest import RunningServer, need

pytestmark = pytest.mark.sipp

LABEL = "Mark Chen, Chief Financial Officer"


def test_a_speaker_from_a_listed_phone_is_named_at_join(
    server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    event = server.create_event(
        speakers=[
            {"name": "Mark Chen", "title": "Chief Financial Officer", "phone": "212-555-1234"},
            {"name": "Dana Fox", "title": "Investor Relations"},
        ]
    )
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

    def named() -> list[dict[str, Any]]:
        return [p for p in server.participants(event.id) if p["name"]]

    # The From user is not a number; the trunk's P-Asserted-Identity is his phone.
    speaker = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode + "#"]),
        name="speaker",
        stay_ms=4000,
        caller=Caller(
            "Conference Room",
            "room4",
            "P-Asserted-Identity: <sip:+12125551234@carrier.example>",
        ),
        timeout=40,
        background_check=named,
    )
    assert speaker.ok, speaker.report
    (joined,) = speaker.background
    assert (joined["name"], joined["role"]) == (LABEL, "speaker")
    rows = server.api("GET", f"/api/events/{event.id}/audit").json()
    (entry,) = [row for row in rows if row["kind"] == "name"]
    assert (entry["actor"], entry["detail"], entry["participant_id"]) == (
        "speaker list",
        {"name": LABEL},
        joined["id"],
    )
    # The attendance export: his number as the trunk asserted it, not the display name,
    # what his phone sent beside it, and the name the speaker list gave him.
    exported = server.api("GET", f"/api/events/{event.id}/attendance.csv").text
    (row,) = [r for r in csv.DictReader(io.StringIO(exported)) if r["participant"] == joined["id"]]
    assert (row["caller_id"], row["caller_name"], row["name"], row["role"]) == (
        "'+12125551234",
        "Conference Room",
        LABEL,
        "speaker",
    )
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    folder = layout.event_recordings(server.data_dir, event.id)
    (manifest,) = server.wait_for(lambda: list(folder.glob(f"*/{MANIFEST}")), timeout=20)
    stems = json.loads(manifest.read_text())["participants"]
    assert stems[joined["id"]]["display_name"] == LABEL
