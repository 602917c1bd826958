"""The investor pages and the operator console, through the in-process client."""

from __future__ import annotations

import copy
import html
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventFile, EventRecord, EventState
from callbridge.store.events import EventStore
from callbridge.web import pages
from tests.conftest import EXAMPLE, example_data
from tests.web.conftest import OPERATOR, PASSWORD

# "Today" for every test here, so that replay windows do not expire under them.
TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
# Not a substring of any number in the example, so "absent" means absent.
SPEAKER = "6060606"


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def store(client: TestClient) -> EventStore:
    value: EventStore = client.app.state.events  # type: ignore[attr-defined]
    return value


def make_event(
    client: TestClient,
    *,
    title: str,
    starts_at: str = "2026-11-05T16:30:00",
    codes: tuple[str, str, str] = ("8024721", SPEAKER, "4417"),
    state: EventState = EventState.SCHEDULED,
    **event: Any,
) -> EventRecord:
    """The example event with another title, start and passcodes, moved to ``state``."""
    data: dict[str, Any] = copy.deepcopy(example_data())
    start = datetime.fromisoformat(starts_at)
    event.setdefault("replay_until", (start + timedelta(days=7)).date().isoformat())
    data["event"].update(
        title=title,
        starts_at=start,
        passcode=codes[0],
        speaker_passcode=codes[1],
        replay_passcode=codes[2],
        **event,
    )
    record = store(client).create(EventFile.model_validate(data))
    path = {
        EventState.SCHEDULED: [],
        EventState.LIVE: [EventState.LIVE],
        EventState.ENDED: [EventState.ENDED],
        EventState.ARCHIVED: [EventState.ENDED, EventState.ARCHIVED],
    }[state]
    for step in path:
        record = store(client).set_state(record.id, step)
    return record


def section(page: str, heading_id: str) -> str:
    """The part of the events page under the heading ``heading_id``."""
    upcoming = page.index('<section aria-labelledby="upcoming">')
    past = page.index('<section aria-labelledby="past">')
    if heading_id == "upcoming":
        return page[upcoming:past]
    return page[past : page.index("</main>")]


def login(client: TestClient) -> str:
    """Log the client in as the operator; return the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token, "next": "/console"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return csrf_of(client.get("/console").text)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def text_of(page: str) -> str:
    """The page without its tags, as a reader sees the words."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def textarea(page: str) -> str:
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.DOTALL)
    assert match is not None
    return html.unescape(match.group(1))


# --- The public events page ---------------------------------------------------


def test_upcoming_soonest_first_and_past_newest_first(client: TestClient) -> None:
    make_event(
        client, title="Later call", starts_at="2027-02-10T16:30:00", codes=("1111", "1112", "1113")
    )
    make_event(
        client,
        title="Call on air",
        starts_at="2026-11-25T09:00:00",
        codes=("2221", "2222", "2223"),
        state=EventState.LIVE,
    )
    make_event(
        client,
        title="Older call",
        starts_at="2026-08-06T16:30:00",
        replay_until=None,
        codes=("3331", "3332", "3333"),
        state=EventState.ARCHIVED,
    )
    make_event(client, title="Recent call", state=EventState.ENDED, codes=("4441", "4442", "4443"))

    page = client.get("/events")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    upcoming, past = section(page.text, "upcoming"), section(page.text, "past")
    assert upcoming.index("Call on air") < upcoming.index("Later call")
    assert "Recent call" not in upcoming and "Older call" not in upcoming
    assert past.index("Recent call") < past.index("Older call")
    assert "Later call" not in past and "Call on air" not in past
    # Only the live one wears the badge.
    assert upcoming.count(">LIVE</span>") == 1
    live_card = upcoming[: upcoming.index("Later call")]
    assert ">LIVE</span>" in live_card


def test_event_card_time_numbers_passcode_links(client: TestClient, app: FastAPI) -> None:
    record = make_event(client, title="Third quarter")
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 1, tzinfo=UTC)
    page = client.get("/events").text
    assert "Northwind Biologics, Inc." in page and "NWBX" in page
    # In the event's own zone, with the zone named ...
    assert "Thursday, November 5, 2026, 4:30 p.m. EST" in text_of(page)
    # ... and in UTC for the script to rewrite into the reader's zone.
    assert '<time datetime="2026-11-05T21:30:00Z" data-local>' in page
    assert '<script src="/static/localtime.js" defer></script>' in page
    # National format to read, E.164 to dial.
    assert "U.S./Canada" in page and "International" in page
    assert '<a href="tel:+18665550199">866-555-0199</a>' in page
    assert '<a href="tel:+19135550123">+1 913-555-0123</a>' in page  # for callers abroad
    assert "8024721" in page
    assert SPEAKER not in page
    assert f'href="/events/{record.id}/webcast"' in page
    assert f'href="/events/{record.id}/announcement"' in page
    assert f'href="/api/events/{record.id}/announcement.ics"' in page
    assert "Add to calendar" in page
    assert ">LIVE</span>" not in page


def test_zones_outside_the_us_and_numbers_from_abroad(client: TestClient) -> None:
    make_event(
        client,
        title="London call",
        starts_at="2026-12-03T14:00:00",
        timezone="Europe/London",
        dial_in=[{"label": "United Kingdom", "number": "+44 20 7946 0958"}],
    )
    make_event(
        client,
        title="Singapore call",
        starts_at="2026-12-04T09:00:00",
        timezone="Asia/Singapore",
        codes=("6661", "6662", "6663"),
    )
    page = client.get("/events").text
    assert "Thursday, December 3, 2026, 2:00 p.m. GMT" in text_of(page)
    # tzdata has no abbreviation for Singapore ("+08"); the page names the offset.
    assert "Friday, December 4, 2026, 9:00 a.m. UTC+8" in text_of(page)
    # A U.S. reader dials a foreign number as written: international format.
    assert '<a href="tel:+442079460958">+44 20 7946 0958</a>' in page


def test_replay_lines_while_open(client: TestClient) -> None:
    make_event(client, title="Ended call", state=EventState.ENDED, replay_until="2026-12-02")
    page = client.get("/events").text
    past = section(page, "past")
    assert "Replay available through Wednesday, December 2, 2026" in past
    assert '<a href="tel:+18665550188">866-555-0188</a>' in past
    assert "4417" in past
    assert "Replay expired" not in past
    assert SPEAKER not in page


def test_replay_expired_after_its_last_day(client: TestClient, app: FastAPI) -> None:
    make_event(client, title="Ended call", state=EventState.ENDED)  # replay through Nov 12
    past = section(client.get("/events").text, "past")
    assert "Replay expired" in past
    assert "Thursday, November 12, 2026" in past
    assert "866-555-0188" not in past and "4417" not in past


def test_replay_last_day_is_inclusive_in_the_events_zone(client: TestClient, app: FastAPI) -> None:
    make_event(client, title="Ended call", state=EventState.ENDED, replay_until="2026-11-25")
    # 11:30 p.m. in New York on the 25th is already the 26th in UTC.
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    assert "Replay available through" in client.get("/events").text
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 26, 5, 30, tzinfo=UTC)
    assert "Replay expired" in client.get("/events").text


def test_no_replay_announced(client: TestClient) -> None:
    make_event(client, title="Ended call", state=EventState.ENDED, replay_until=None)
    past = section(client.get("/events").text, "past")
    assert "No telephone replay was announced" in past
    assert "Replay expired" not in past


def test_webcast_url_replaces_the_webcast_page_link(client: TestClient) -> None:
    record = make_event(client, title="Hosted", webcast_url="https://webcast.example/nwbx")
    page = client.get("/events").text
    assert 'href="https://webcast.example/nwbx"' in page
    assert f'href="/events/{record.id}/webcast"' not in page


def test_empty_events_page(client: TestClient) -> None:
    page = client.get("/events").text
    assert "No events are scheduled." in page and "No past events." in page


def test_home_goes_to_the_events_page(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/events"


# --- Announcement and webcast pages -------------------------------------------


def test_announcement_page(client: TestClient) -> None:
    record = make_event(client, title="Third Quarter Fiscal Year 2026 Financial Results")
    response = client.get(f"/events/{record.id}/announcement")
    assert response.status_code == 200
    page = response.text
    assert (
        "<h1>Northwind Biologics, Inc. Announces Conference Call to Discuss its "
        "Third Quarter Fiscal Year 2026 Financial Results</h1>"
    ) in page
    # The release's body inside the site's page, not a second document.
    assert page.count("<html") == 1 and page.count("<body") == 1
    assert '<link rel="stylesheet" href="/static/style.css">' in page
    for fmt in ("txt", "md", "ics"):
        assert f'href="/api/events/{record.id}/announcement.{fmt}"' in page
    assert "8024721" in page
    assert SPEAKER not in page


@pytest.mark.parametrize("path", ["/events/999/announcement", "/events/999/webcast"])
def test_missing_event_is_an_html_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no event 999" in response.text


def test_webcast_page_before_the_call(client: TestClient, app: FastAPI) -> None:
    record = make_event(client, title="Third quarter")
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 1, tzinfo=UTC)
    response = client.get(f"/events/{record.id}/webcast")
    assert response.status_code == 200
    page = response.text
    assert "The webcast begins at" in page
    assert "4:30 p.m. EST on Thursday, November 5, 2026" in page
    assert "866-555-0199" in page and "8024721" in page
    assert SPEAKER not in page
    assert "<audio" not in page and "<video" not in page


def test_webcast_page_when_the_start_has_passed_but_the_call_has_not(
    client: TestClient, app: FastAPI
) -> None:
    record = make_event(client, title="Third quarter")  # Nov 5, 4:30 p.m. EST, for an hour
    # Twenty minutes late: still expected.
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 5, 21, 50, tzinfo=UTC)
    page = client.get(f"/events/{record.id}/webcast").text
    assert "The webcast begins" not in page
    assert "was due to begin at" in page and "has not started yet" in page
    assert "866-555-0199" in page and "8024721" in page
    assert "did not take place" not in page
    assert "Third quarter" in section(client.get("/events").text, "upcoming")


def test_an_event_never_started_is_past_and_not_held(client: TestClient, app: FastAPI) -> None:
    """Scheduled for Nov 5, never started; today is Nov 25: not upcoming, and said so."""
    record = make_event(client, title="Third quarter")
    make_event(
        client, title="Later call", starts_at="2027-02-10T16:30:00", codes=("1111", "1112", "1113")
    )
    page = client.get("/events").text
    upcoming, past = section(page, "upcoming"), section(page, "past")
    assert "Third quarter" not in upcoming and "Later call" in upcoming
    card = past[past.index(f'id="event-{record.id}"') :]
    assert "Third quarter" in card and "NOT HELD" in card
    assert "Did not take place." in text_of(card)
    assert "was not held; there is no recording or replay" in text_of(card)
    # Neither a number to dial nor a calendar entry for a call that is not coming.
    assert "866-555-0199" not in card and "8024721" not in card
    assert f"/api/events/{record.id}/announcement.ics" not in card

    webcast = client.get(f"/events/{record.id}/webcast").text
    assert "has not started yet" not in webcast and "The webcast begins" not in webcast
    assert "This call did not take place." in text_of(webcast)
    assert "866-555-0199" not in webcast and "8024721" not in webcast
    assert "Register to listen" not in webcast and "<audio" not in webcast

    announcement = client.get(f"/events/{record.id}/announcement").text
    assert "This call did not take place." in text_of(announcement)

    login(client)
    console = client.get("/console").text
    row = console[console.index(f'id="console-event-{record.id}"') :]
    assert ">not held</span>" in row[: row.index("</tr>")]


def test_not_held_from_twelve_hours_after_the_scheduled_end(
    client: TestClient, app: FastAPI
) -> None:
    make_event(client, title="Third quarter")  # ends Nov 5, 5:30 p.m. EST = 22:30 UTC
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 6, 10, 29, tzinfo=UTC)
    assert "Third quarter" in section(client.get("/events").text, "upcoming")
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 11, 6, 10, 30, tzinfo=UTC)
    assert "Third quarter" in section(client.get("/events").text, "past")


def test_webcast_page_live_and_after(client: TestClient) -> None:
    record = make_event(client, title="Third quarter", state=EventState.LIVE)
    live = client.get(f"/events/{record.id}/webcast").text
    assert ">LIVE</span>" in live and "The call is live now." in live
    store(client).set_state(record.id, EventState.ENDED)
    ended = client.get(f"/events/{record.id}/webcast").text
    assert "The call has ended." in ended
    assert "The webcast begins" not in ended
    assert "Replay expired" in ended  # through Nov 12; today is Nov 25


# --- The operator console -----------------------------------------------------


def test_console_needs_a_login(client: TestClient) -> None:
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/console"
    posted = client.post("/console/events", data={"event_toml": ""}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")


def test_console_lists_events_with_every_passcode(client: TestClient) -> None:
    scheduled = make_event(client, title="Scheduled call")
    ended = make_event(
        client, title="Ended call", state=EventState.ENDED, codes=("7771", "7772", "7773")
    )
    login(client)
    page = client.get("/console").text
    assert OPERATOR in page
    for code in ("8024721", SPEAKER, "4417", "7771", "7772", "7773"):
        assert code in page
    assert "Thursday, November 5, 2026, 4:30 p.m. EST" in page
    # Only a scheduled event has a delete button; a held call is history.
    assert f'action="/console/events/{scheduled.id}/delete"' in page
    assert f'action="/console/events/{ended.id}/delete"' not in page
    assert 'action="/logout"' in page


def test_form_posts_without_the_csrf_token_are_refused(client: TestClient) -> None:
    record = make_event(client, title="Scheduled call")
    login(client)
    text = EXAMPLE.read_text()
    for data in ({"event_toml": text}, {"event_toml": text, "csrf_token": "forged"}):
        refused = client.post("/console/events", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
    deleted = client.post(
        f"/console/events/{record.id}/delete", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert deleted.status_code == 403
    assert [r.id for r in store(client).list_events()] == [record.id]


def test_create_from_the_prefilled_template(client: TestClient) -> None:
    login(client)
    console = client.get("/console").text
    template = textarea(console)
    assert tomllib.loads(template)["company"]["ticker"] == "NWBX"
    response = client.post(
        "/console/events",
        data={"event_toml": template, "csrf_token": csrf_of(console)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/console"
    [record] = store(client).list_events()
    after = client.get("/console").text
    assert f"Created event {record.id}" in after
    # The flash is shown once.
    assert f"Created event {record.id}" not in client.get("/console").text
    assert record.title in client.get("/events").text


def test_create_from_the_example_file(client: TestClient) -> None:
    token = login(client)
    response = client.post(
        "/console/events", data={"event_toml": EXAMPLE.read_text(), "csrf_token": token}
    )
    assert response.status_code == 200
    [record] = store(client).list_events()
    assert record.passcode == "8024721" and record.speaker_passcode == "5550123"
    assert f"Created event {record.id}: NWBX" in response.text


def _post_bad(client: TestClient, old: str, new: str) -> tuple[int, str, str]:
    token = login(client)
    text = EXAMPLE.read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    response = client.post("/console/events", data={"event_toml": bad, "csrf_token": token})
    assert store(client).list_events() == []
    # What the operator typed comes back to be corrected, not the template.
    assert textarea(response.text) == bad
    return response.status_code, response.text, bad


def test_bad_phone_number_names_the_field(client: TestClient) -> None:
    status, page, _ = _post_bad(client, 'number = "+1 866-555-0199"', 'number = "+1 555"')
    assert status == 422
    message = "event.dial_in.0.number: '+1 555' is not a valid phone number"
    assert message in html.unescape(page)


def test_unknown_zone_names_the_field(client: TestClient) -> None:
    status, page, _ = _post_bad(
        client, 'timezone = "America/New_York"', 'timezone = "Mars/Olympus_Mons"'
    )
    assert status == 422
    assert "event.timezone: " in page
    assert "'Mars/Olympus_Mons' is not an IANA time zone" in html.unescape(page)


def test_store_refusal_names_the_field(client: TestClient) -> None:
    make_event(client, title="Holds the passcode")
    token = login(client)
    response = client.post(
        "/console/events", data={"event_toml": EXAMPLE.read_text(), "csrf_token": token}
    )
    assert response.status_code == 422
    assert "event.passcode: is already in use by another event" in response.text


def test_toml_syntax_error(client: TestClient) -> None:
    status, page, _ = _post_bad(client, "[company]", "[company")
    assert status == 422 and "not valid TOML" in page


def test_delete_a_scheduled_event(client: TestClient) -> None:
    record = make_event(client, title="Cancelled call")
    token = login(client)
    response = client.post(
        f"/console/events/{record.id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert store(client).list_events() == []
    assert f"Deleted event {record.id}." in client.get("/console").text
    assert client.get(f"/events/{record.id}/announcement").status_code == 404


def test_a_held_call_is_not_deleted(client: TestClient) -> None:
    record = make_event(client, title="Held call", state=EventState.ENDED)
    token = login(client)
    client.post(
        f"/console/events/{record.id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert [r.id for r in store(client).list_events()] == [record.id]
    assert f"Event {record.id} was not deleted" in client.get("/console").text


def test_logout_from_the_console(client: TestClient) -> None:
    token = login(client)
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/console", follow_redirects=False).status_code == 303
