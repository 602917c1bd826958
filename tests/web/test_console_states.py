"""The moderator's call buttons on a real `callbridge serve`, clicked in real Chromium.

Before the call "Start call" is the one primary action; once clicked it is
gone and "End call" takes its place; after the end neither is offered. While
the call is live, a cue the caption worker writes shows in the console's live
transcript without a reload or a poll.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callbridge.store import layout
from callbridge.webcast.captions import TRANSCRIPT
from tests.support.chromium import launch
from tests.telephony.conftest import start_server

pytestmark = pytest.mark.browser


def _offered(page: Any, name: str) -> bool:
    button = page.get_by_role("button", name=name)
    return bool(button.is_visible() and button.is_enabled())


def test_start_call_gives_way_to_end_call(tmp_path: Path) -> None:
    with start_server(tmp_path) as server, launch() as browser:
        event = server.create_event()
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())  # "End the call for everyone?"
        page.goto(f"{server.http_url}/login?next=/console/events/{event.id}")
        page.fill("input[name=name]", "operator")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/console/events/{event.id}")

        assert _offered(page, "Start call") and not _offered(page, "End call")
        page.get_by_role("button", name="Start call").click()
        page.wait_for_selector("#call-state:text('live')")
        page.wait_for_selector("button[data-call=start]", state="hidden")
        assert not _offered(page, "Start call") and _offered(page, "End call")
        assert server.api("GET", f"/api/events/{event.id}").json()["state"] == "live"
        # A reload renders the same from the event's state.
        page.reload()
        page.wait_for_selector("#call-state:text('live')")
        assert not _offered(page, "Start call") and _offered(page, "End call")

        # The caption worker appends a cue (this server runs none: the test writes as it does).
        transcript = layout.event_webcast(server.data_dir, event.id) / TRANSCRIPT
        transcript.parent.mkdir(parents=True, exist_ok=True)
        cue = {"start": 0.5, "end": 2.0, "speaker": "Speaker", "text": "Good afternoon"}
        with transcript.open("a") as worker:
            worker.write(json.dumps(cue) + "\n")
        page.wait_for_selector("#live-captions li:has-text('Good afternoon')")
        # A settled reading takes the place of the lines it revises, in the same line; a
        # later one may settle it again with the next (it names the revision's index).
        lines = [
            {"start": 2.1, "end": 3.0, "speaker": "Speaker", "text": "and welcome"},
            {"start": 0.5, "end": 3.0, "speaker": "Speaker", "text": "Good afternoon and welcome.",
             "revises": [0, 1]},
            {"start": 3.2, "end": 4.0, "speaker": "Speaker", "text": "to the"},
            {"start": 0.5, "end": 4.0, "speaker": "Speaker",
             "text": "Good afternoon and welcome to the call.", "revises": [2, 3]},
        ]  # fmt: skip
        with transcript.open("a") as worker:
            worker.write("".join(json.dumps(line) + "\n" for line in lines))
        page.wait_for_selector("#live-captions li:has-text('welcome to the call.')")
        shown = page.locator("#live-captions li .text").all_text_contents()
        assert shown == ["Good afternoon and welcome to the call."], shown

        page.get_by_role("button", name="End call").click()
        page.wait_for_selector("#call-state:text('ended')")
        page.wait_for_selector("button[data-call=end]", state="hidden")
        assert not _offered(page, "Start call") and not _offered(page, "End call")
        assert server.api("GET", f"/api/events/{event.id}").json()["state"] == "ended"
