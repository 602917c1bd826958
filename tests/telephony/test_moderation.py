"""The moderator's actions on real sipp callers: the call controller decides, the bridge does it.

The lock turns a listener away at the door (the "locked" prompt, then BYE)
while a speaker still gets in; "mute" and "disconnect" reach a caller on the
call, who is hung up on, and the audit trail names the moderator. The
moderator adds a speaker to the event's list and names a caller with one
click on it in the console (real Chromium); the name is what the console,
the audit trail and the recording's manifest (from which the transcript
and the replay's captions take their speaker labels) say.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbridge.media.recording import MANIFEST
from callbridge.store import layout
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.sipp import call_in
from tests.telephony.conftest import RunningServer, need

pytestmark = pytest.mark.sipp


@pytest.fixture(autouse=True)
def _sipp() -> None:
    need("sipp")


def audit(server: RunningServer, event_id: int, kinds: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = server.api("GET", f"/api/events/{event_id}/audit").json()
    return [row for row in rows if row["kind"] in kinds]


def act(server: RunningServer, event_id: int, **action: Any) -> Any:
    return server.api("POST", f"/api/events/{event_id}/actions", json=action)


def test_a_locked_call_sends_a_listener_away_and_lets_a_speaker_in(
    server: RunningServer, tmp_path: Path
) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    locked = act(server, event.id, action="lock")
    assert locked.status_code == 200 and locked.json()["locked"] is True
    refused = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        timeout=45,
    )
    assert refused.ok, refused.report
    assert server.participants(event.id, include_left=True) == []
    joined = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode + "#"]),
        stay_ms=6000,
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert joined.ok, joined.report
    assert joined.background and joined.background[0]["role"] == "speaker"
    rows = server.wait_for(
        lambda: (
            (found := audit(server, event.id, {"lock", "join", "leave"}))
            and found[-1]["kind"] == "leave"
            and found
        )
    )
    assert [(row["kind"], row["role"]) for row in rows] == [
        ("lock", None),
        ("join", "speaker"),
        ("leave", None),
    ]
    assert rows[0]["actor"] == "operator"


def test_the_moderator_mutes_a_caller_then_disconnects_them(
    server: RunningServer, tmp_path: Path
) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    done: list[tuple[str, int, Any]] = []

    def moderate() -> bool:
        people = server.participants(event.id)
        if people and not done:
            pid = people[0]["id"]
            muted = act(server, event.id, action="mute", participant_id=pid)
            done.append(
                ("mute", muted.status_code, [p["muted"] for p in muted.json()["participants"]])
            )
            cut = act(server, event.id, action="disconnect", participant_id=pid)
            done.append(("disconnect", cut.status_code, cut.json()["participants"]))
        return bool(done)

    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode + "#"]),
        timeout=45,
        background_check=moderate,
    )
    # The BYE came from the bridge: the caller was hung up on.
    assert result.ok, result.report
    assert done == [("mute", 200, [True]), ("disconnect", 200, [])]
    rows = server.wait_for(
        lambda: (found := audit(server, event.id, {"mute", "leave"})) and len(found) == 2 and found
    )
    assert [(row["kind"], row["actor"], row["role"]) for row in rows] == [
        ("mute", "operator", "speaker"),
        ("leave", "system", None),
    ]
    assert rows[1]["detail"] == {"reason": "disconnected by operator"}


def test_the_moderator_promotes_a_listener_then_moves_them_back_to_listen_only(
    server: RunningServer, tmp_path: Path
) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    done: list[tuple[str, int, Any]] = []

    def moderate() -> bool:
        people = server.participants(event.id)
        if people and not done:
            pid = people[0]["id"]
            for action in ("promote", "demote"):
                answer = act(server, event.id, action=action, participant_id=pid)
                body = answer.json()
                # A refusal's body says why (its "detail") in the assertion below.
                rows = [(p["role"], p["muted"]) for p in body.get("participants", [])] or body
                done.append((action, answer.status_code, rows))
            again = act(server, event.id, action="demote", participant_id=pid)
            done.append(("demote", again.status_code, []))
        return bool(done)

    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        # Long enough for three answers from a server on a loaded machine (a caller
        # gone before the last fails the test), short of the server's media
        # timeout (8 s here: this caller sends no audio once the keys are sent).
        stay_ms=7000,
        timeout=45,
        background_check=moderate,
    )
    assert result.ok, result.report
    assert done == [
        ("promote", 200, [("speaker", False)]),
        ("demote", 200, [("listener", False)]),
        ("demote", 409, []),  # a listener already: refused, with the reason
    ]
    rows = server.wait_for(
        lambda: (found := audit(server, event.id, {"role"})) and len(found) == 2 and found
    )
    assert [(row["kind"], row["actor"], row["role"]) for row in rows] == [
        ("role", "operator", "speaker"),
        ("role", "operator", "listener"),
    ]


@pytest.mark.browser
def test_the_moderator_names_a_speaker_in_the_console(
    server: RunningServer, tmp_path: Path
) -> None:
    event = server.create_event(speakers=[{"name": "Dana Fox", "title": "Investor Relations"}])
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    # The speaker sends RTP (silence) all along: a caller who sends nothing is
    # hung up after the server's media timeout (8 s here), row and all.
    keys = passcode_stream(
        [event.speaker_passcode + "#"], tone=np.zeros(160, np.int16), talk_after=110
    )
    speaker = threading.Thread(
        target=call_in,
        args=(server.sip_target, tmp_path, keys),
        kwargs={"stay_ms": 120_000, "timeout": 135},  # the call is ended by the test
    )
    speaker.start()
    try:
        (joined,) = server.wait_for(lambda: server.participants(event.id), timeout=20)
        with launch() as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
            page.fill("input[name=name]", "operator")
            page.fill("input[name=password]", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_url(f"**/console/events/{event.id}")
            row = page.locator(f"tr[data-participant='{joined['id']}']")
            # The console's live stream may take a while on a loaded machine.
            row.wait_for(timeout=60_000)
            # A late speaker joins the list while the call is live; a bad phone is
            # refused naming the entry and the field.
            page.get_by_label("Speaker 2: name").fill("Mark Chen")
            page.get_by_label("Speaker 2: title").fill("<CFO>")
            page.get_by_label("Speaker 2: phone they call from").fill("555")
            page.get_by_role("button", name="Save speakers").click()
            page.wait_for_selector("#speakers-state:text('speaker 2 phone: ')")
            page.get_by_label("Speaker 2: phone they call from").fill("+1 212 555 1234")
            page.get_by_role("button", name="Save speakers").click()
            page.wait_for_selector("#speakers-state:text('Saved 2 speakers.')")
            assert page.get_by_label("Speaker 2: phone they call from").input_value() == (
                "+12125551234"
            )
            row.get_by_role("button", name="Name", exact=True).click(timeout=60_000)
            dialog = page.get_by_role("dialog")
            # A blank name is refused with the field and the reason; nothing changes.
            dialog.get_by_role("combobox").fill("   ")  # a text box with suggestions
            dialog.get_by_role("button", name="Save").click()
            page.wait_for_selector("#problem:text('name: ')")
            assert server.participants(event.id)[0]["name"] is None
            # The listed speakers are one click each; markup in a name is text wherever shown.
            named = "Mark Chen, <CFO>"
            assert dialog.locator("[data-speaker-label]").all_inner_texts() == [
                "Dana Fox, Investor Relations",
                named,
            ]
            dialog.get_by_role("button", name=named).click()
            page.wait_for_selector("#name-dialog:not([open])", state="attached")
            assert row.locator("td").first.inner_text() == named
            assert errors == []
        assert server.participants(event.id)[0]["name"] == named
        (entry,) = audit(server, event.id, {"name"})
        assert (entry["actor"], entry["detail"]) == ("operator", {"name": named})
        # Ending the call hangs the speaker up and closes the recording.
        assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    finally:
        speaker.join(timeout=150)
    folder = layout.event_recordings(server.data_dir, event.id)
    (manifest,) = server.wait_for(lambda: list(folder.glob(f"*/{MANIFEST}")), timeout=20)
    participants = json.loads(manifest.read_text())["participants"]
    assert participants[joined["id"]]["display_name"] == named
