"""What the pages say about an event's state, read in real Chromium as a visitor sees it.

The live call wears the LIVE badge and offers no download; the replay is
called "Replay", without the badge, and offers the M4A; an event whose start
passed long ago without a call is not "upcoming"; the moderator is offered
"Start call" only before the call and "End call" only while it is live.
The live and replay files are laid on disk as the media plane leaves them,
and the app serves them as it does in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.web import pages
from callbridge.web.media import LIVE_PLAYLIST, REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY
from tests.web.conftest import OPERATOR, PASSWORD, LiveServer
from tests.web.test_browser import log_in, make_event, watch_console

pytestmark = pytest.mark.browser

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(live_server: LiveServer) -> Iterator[None]:
    live_server.app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    live_server.app.dependency_overrides.pop(pages.clock, None)


def _event(server: LiveServer, state: EventState, **event: Any) -> EventRecord:
    event.setdefault("replay_until", "2026-12-10")
    record = make_event(server, registration="off", **event)
    steps = {
        EventState.SCHEDULED: [],
        EventState.LIVE: [EventState.LIVE],
        EventState.ENDED: [EventState.LIVE, EventState.ENDED],
    }[state]
    for step in steps:
        record = server.app.state.events.set_state(record.id, step)
    return record


def _visible(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).is_visible())


def _visible_texts(page: Any, selector: str) -> list[str]:
    found = page.locator(selector)
    return [found.nth(i).inner_text() for i in range(found.count()) if found.nth(i).is_visible()]


def test_the_live_call_is_live_and_offers_no_download(page: Any, live_server: LiveServer) -> None:
    record = _event(live_server, EventState.LIVE)
    live = live_server.app.state.webcast_media.live_dir(record.id)
    live.mkdir(parents=True)
    (live / LIVE_PLAYLIST).write_text("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n")

    page.goto(f"{live_server.url}/events/{record.id}/webcast")
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'live'")
    assert page.locator("#player-title").inner_text() == "Live call"
    assert _visible(page, "#live-badge")
    assert "The call is live now." in page.locator("#webcast-status").inner_text()
    # The recording is not ready while the call goes on: nothing offers it.
    assert not _visible(page, "#downloads")
    assert not page.get_by_text("Download the recording").is_visible()


def test_the_replay_says_replay_without_the_live_badge(page: Any, live_server: LiveServer) -> None:
    record = _event(live_server, EventState.ENDED)
    media = live_server.app.state.webcast_media
    directory = layout.recording_dir(media.data_dir, record.id, "20261105T213000Z")
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("{}")
    (directory / "recording.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")

    page.goto(f"{live_server.url}/events/{record.id}/webcast")
    offer = page.get_by_role("button", name="Play the replay")
    offer.wait_for()
    assert not page.evaluate("document.getElementById('webcast').dataset.playing")
    assert "The replay is ready" in page.locator("#webcast-status").inner_text()
    offer.click()
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'replay'")
    assert page.locator("#player-title").inner_text() == "Replay"
    assert _visible_texts(page, ".badge") == []  # no LIVE anywhere on the page
    assert "LIVE" not in page.locator("body").inner_text()
    download = page.get_by_role("link", name="Download the recording (M4A)")
    assert download.is_visible()
    assert download.get_attribute("href") == f"/webcast/{record.id}/replay.m4a"


def test_the_page_before_the_call_offers_neither(page: Any, live_server: LiveServer) -> None:
    record = _event(live_server, EventState.SCHEDULED, starts_at="2026-12-03T16:30:00")
    page.goto(f"{live_server.url}/events/{record.id}/webcast")
    assert "The webcast begins at" in page.locator("#webcast-status").inner_text()
    assert _visible_texts(page, ".badge") == []
    assert not page.get_by_text("Download the recording").is_visible()


def test_an_event_never_held_is_listed_as_past(page: Any, live_server: LiveServer) -> None:
    errors = watch_console(page)
    lapsed = _event(live_server, EventState.SCHEDULED)  # Nov 5; today is Nov 25
    coming = _event(
        live_server,
        EventState.SCHEDULED,
        starts_at="2026-12-03T16:30:00",
        passcode="1234567",
        speaker_passcode="7654321",
        replay_passcode="9999",
    )
    page.goto(f"{live_server.url}/events")
    upcoming = page.locator("section[aria-labelledby=upcoming]")
    past = page.locator("section[aria-labelledby=past]")
    assert upcoming.locator(f"#event-{coming.id}").is_visible()
    assert upcoming.locator(f"#event-{lapsed.id}").count() == 0
    card = past.locator(f"#event-{lapsed.id}")
    assert card.is_visible()
    assert "NOT HELD" in card.inner_text() and "Did not take place." in card.inner_text()
    assert "866-555-0199" not in card.inner_text()

    page.goto(f"{live_server.url}/events/{lapsed.id}/webcast")
    status = page.locator("#webcast-status").inner_text()
    assert "This call did not take place." in status and "has not started yet" not in status
    assert errors == []


@pytest.mark.parametrize(
    ("state", "start", "end"),
    [
        (EventState.SCHEDULED, True, False),
        (EventState.LIVE, False, True),
        (EventState.ENDED, False, False),
    ],
)
def test_the_console_offers_the_call_action_that_fits(
    page: Any, live_server: LiveServer, state: EventState, start: bool, end: bool
) -> None:
    record = _event(live_server, state, starts_at="2026-11-25T09:30:00")
    log_in(page, live_server, OPERATOR, PASSWORD)
    page.wait_for_url("**/console")
    page.goto(f"{live_server.url}/console/events/{record.id}")
    page.wait_for_load_state("load")
    assert page.get_by_role("button", name="Start call").is_visible() is start
    assert page.get_by_role("button", name="End call").is_visible() is end
    assert page.locator("#call-state").inner_text() == state.value
