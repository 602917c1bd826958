"""The investor pages and the console in real headless Chromium, against a live server."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventFile, EventRecord, EventState
from callbridge.store.events import EventStore
from callbridge.web import pages
from tests.conftest import example_data
from tests.web.conftest import OPERATOR, PASSWORD, LiveServer

pytestmark = pytest.mark.browser

HEADLINE = (
    "Northwind Biologics, Inc. Announces Conference Call to Discuss its "
    "Third Quarter Fiscal Year 2026 Financial Results"
)


def make_event(server: LiveServer, **event: Any) -> EventRecord:
    data: dict[str, Any] = copy.deepcopy(example_data())
    data["event"].update(event)
    events: EventStore = server.app.state.events
    return events.create(EventFile.model_validate(data))


def watch_console(page: Any) -> list[str]:
    """Errors the page logs (a script that failed, a CSP refusal), collected as they come."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def no_horizontal_overflow(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def log_in(page: Any, server: LiveServer, name: str, password: str) -> None:
    page.goto(f"{server.url}/console")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_events_page_on_a_phone(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    # Four days before the call: it is still upcoming.
    live_server.app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 1, tzinfo=UTC)
    make_event(live_server)
    ended = make_event(
        live_server,
        title="Second Quarter Fiscal Year 2026 Financial Results",
        starts_at="2026-08-06T16:30:00",
        replay_until="2026-08-13",
        passcode="1234567",
        speaker_passcode="7654321",
        replay_passcode="9999",
    )
    live_server.app.state.events.set_state(ended.id, EventState.ENDED)
    errors = watch_console(page)

    page.goto(f"{live_server.url}/events")
    assert page.viewport_size["width"] == 390
    page.wait_for_selector("time[data-local][data-localized]")
    assert no_horizontal_overflow(page)
    upcoming = page.locator("#event-1")
    assert "Third Quarter Fiscal Year 2026 Financial Results" in upcoming.inner_text()
    assert "Thursday, November 5, 2026, 4:30 p.m. EST" in upcoming.inner_text()
    assert "866-555-0199" in upcoming.inner_text()
    # The script replaced the server's UTC text with the reader's own zone.
    local = upcoming.locator("time[data-local]")
    assert local.inner_text() != "Thursday, November 5, 2026, 9:30 p.m. UTC"
    assert "2026" in local.inner_text() and "9:30" in local.inner_text()  # this browser is UTC
    assert "Replay expired" in page.locator(f"#event-{ended.id}").inner_text()
    assert errors == []
    shot = Path(os.environ.get("CALLBRIDGE_SCREENSHOT", tmp_path / "events.png"))
    page.screenshot(path=str(shot), full_page=True)


@pytest.fixture
def pacific_page(chromium: Any) -> Iterator[Any]:
    """A phone in California: the local time must come out in Pacific time."""
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, locale="en-US", timezone_id="America/Los_Angeles"
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def test_local_time_in_the_readers_zone(pacific_page: Any, live_server: LiveServer) -> None:
    make_event(live_server)
    pacific_page.goto(f"{live_server.url}/events")
    local = pacific_page.locator("#event-1 time[data-local][data-localized]")
    text = local.inner_text()
    assert "Thursday, November 5, 2026" in text
    assert "1:30" in text and "PST" in text
    assert local.get_attribute("title") == "America/Los_Angeles"
    # The event's own zone is still printed beside it.
    assert "4:30 p.m. EST" in pacific_page.locator("#event-1 .when").inner_text()


def test_announcement_page_shows_the_headline(page: Any, live_server: LiveServer) -> None:
    record = make_event(live_server)
    errors = watch_console(page)
    page.goto(f"{live_server.url}/events/{record.id}/announcement")
    assert page.locator("h1").inner_text() == HEADLINE
    assert page.get_by_role("link", name="Calendar (.ics)").get_attribute("href") == (
        f"/api/events/{record.id}/announcement.ics"
    )
    assert no_horizontal_overflow(page)
    assert errors == []


def test_wrong_password_and_unknown_user_get_the_same_error(
    page: Any, live_server: LiveServer
) -> None:
    log_in(page, live_server, OPERATOR, "not the password")
    error = page.locator("[role=alert]")
    assert error.inner_text() == "Wrong name or password."
    log_in(page, live_server, "nobody", PASSWORD)
    assert page.locator("[role=alert]").inner_text() == "Wrong name or password."
    assert "/login" in page.url


def test_right_password_lands_on_the_console(page: Any, live_server: LiveServer) -> None:
    log_in(page, live_server, OPERATOR, PASSWORD)
    page.wait_for_url(f"{live_server.url}/console")
    assert page.locator("h1").inner_text() == "Operator console"
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/login")


def test_new_event_form_creates_an_event_on_the_events_page(
    page: Any, live_server: LiveServer
) -> None:
    errors = watch_console(page)
    log_in(page, live_server, OPERATOR, PASSWORD)
    page.wait_for_url(f"{live_server.url}/console")
    text = page.locator("textarea[name=event_toml]").input_value()
    assert "[company]" in text
    page.get_by_role("button", name="Create event").click()
    flash = page.locator(".flash.ok")
    assert flash.inner_text().startswith("Created event 1: NWBX")
    events: EventStore = live_server.app.state.events
    [record] = events.list_events()
    page.goto(f"{live_server.url}/events")
    assert record.title in page.locator("#event-1").inner_text()
    assert errors == []


def test_a_bad_field_keeps_the_text_and_delete_asks_first(
    page: Any, live_server: LiveServer
) -> None:
    record = make_event(live_server)
    log_in(page, live_server, OPERATOR, PASSWORD)
    page.wait_for_url(f"{live_server.url}/console")
    box = page.locator("textarea[name=event_toml]")
    typed = box.input_value().replace('"America/New_York"', '"Mars/Olympus_Mons"')
    box.fill(typed)
    page.get_by_role("button", name="Create event").click()
    assert page.locator("#new-event-error").inner_text().startswith("event.timezone: ")
    assert page.locator("textarea[name=event_toml]").input_value() == typed

    events: EventStore = live_server.app.state.events
    delete = page.locator(f"#console-event-{record.id} button", has_text="Delete")
    page.once("dialog", lambda dialog: dialog.dismiss())
    delete.click()
    assert [r.id for r in events.list_events()] == [record.id]
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    assert page.locator(".flash.ok").inner_text() == f"Deleted event {record.id}."
    assert events.list_events() == []
