"""The console's event editor in real Chromium against a live server: create through the form,
a bad phone number and a time the clocks skip refused beside their fields with the typing
kept, edit, duplicate as next quarter, two editors saving the same event (the second sees
what the first changed), axe-core and the page's CSP.

Screenshots go to $CALLBRIDGE_SCREENSHOTS (a folder) when set, else to the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventRecord, EventState
from callbridge.store.events import EventStore
from tests.web.conftest import OPERATOR, PASSWORD, LiveServer
from tests.web.test_accessibility import AXE, FAILING, RUN_AXE
from tests.web.test_auth import WATCH_CSP
from tests.web.test_browser import make_event, no_horizontal_overflow

pytestmark = pytest.mark.browser

WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def saved(url: str) -> bool:
    """Back on the console, at the saved event's row."""
    return "/console#console-event-" in url


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CALLBRIDGE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[tuple[Any, list[str]]]:
    """A wide page that logs its CSP refusals and script errors."""
    context = chromium.new_context(viewport=WIDE, locale="en-US")
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        yield page, problems
    finally:
        context.close()


def _log_in(page: Any, server: LiveServer, then: str = "/console") -> None:
    page.goto(f"{server.url}/login?next={then}")
    page.fill("input[name=name]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{then}")


def _field(page: Any, key: str) -> Any:
    return page.locator(f"[name='{key}']")


def _error(page: Any, key: str) -> str:
    return str(page.locator(f"#f-{key.replace('.', '-')}-error").inner_text())


def _csp(page: Any) -> list[str]:
    violations: list[str] = page.evaluate("window.cspViolations")
    return violations


def _store(server: LiveServer) -> EventStore:
    events: EventStore = server.app.state.events
    return events


def test_create_edit_and_duplicate_through_the_form(
    browser_page: tuple[Any, list[str]], live_server: LiveServer, tmp_path: Path
) -> None:
    page, problems = browser_page
    shots = _shots(tmp_path)
    _log_in(page, live_server)
    page.get_by_role("link", name="New event").click()
    page.wait_for_url("**/console/new-event")
    # Passcodes come generated, editable.
    generated = [_field(page, f"event.{f}").input_value() for f in ("passcode", "speaker_passcode")]
    assert all(len(code) == 7 and code.isdigit() for code in generated)

    typed = {
        "company.name": "Northwind Biologics, Inc.",
        "company.ticker": "NWBX",
        "company.exchange": "Nasdaq",
        "company.city": "CAMBRIDGE, Mass.",
        "company.website": "https://www.northwind.example",
        "company.about": "Northwind Biologics, Inc. develops targeted biologic therapies.",
        "event.title": "Third Quarter Fiscal Year 2026 Financial Results",
        "event.period": "the three-month period ended September 30, 2026",
        "event.start_date": "2026-11-05",
        "event.start_time": "16:30",
        "event.replay_until": "2026-11-12",
        "event.dial_in.0.label": "U.S./Canada",
        "event.dial_in.0.number": "+1 866-555-0199",
        "event.dial_in.1.label": "International",
        "event.dial_in.1.number": "+1 913-555-01",  # one digit short
        "event.speakers.0.name": "Mark Chen",
        "event.speakers.0.title": "Chief Financial Officer",
        "event.speakers.0.phone": "+1 617-555-0147",
        "contacts.0.group": "Investors",
        "contacts.0.name": "Dana Whitfield",
        "contacts.0.email": "ir@northwind.example",
        "event.glossary": "Northwind\nNWB-201",
    }
    for key, value in typed.items():
        _field(page, key).fill(value)
    _field(page, "event.timezone").select_option("America/New_York")
    preview = page.locator("[data-preview]")
    assert preview.inner_text() == "Thu 5 Nov 2026, 4:30 pm EST = 21:30 UTC"
    # A second speaker row, added in place by the script.
    page.get_by_role("button", name="Add speaker").click()
    _field(page, "event.speakers.1.name").fill("Ana Ruiz")
    _field(page, "event.speakers.1.title").fill("Chief Executive Officer")
    page.get_by_role("button", name="Create event").click()

    # Refused beside the field, the typing kept, nothing created.
    page.wait_for_selector("#errors")
    assert "is not a valid phone number" in _error(page, "event.dial_in.1.number")
    assert _field(page, "event.dial_in.1.number").get_attribute("aria-invalid") == "true"
    assert page.locator("#errors").inner_text().count("Dial-in 2 · Number") == 1
    for key, value in typed.items():
        assert _field(page, key).input_value() == value, key
    assert _field(page, "event.speakers.1.name").input_value() == "Ana Ruiz"
    assert _store(live_server).list_events() == []
    page.screenshot(path=str(shots / "editor-refused-1366.png"), full_page=True)

    _field(page, "event.dial_in.1.number").fill("+1 913-555-0123")
    page.get_by_role("button", name="Create event").click()
    page.wait_for_url(saved)
    assert "Created event" in page.locator(".flash.ok").inner_text()
    [created] = _store(live_server).list_events()
    assert created.title == typed["event.title"]
    assert [s.label for s in created.speakers] == [
        "Mark Chen, Chief Financial Officer",
        "Ana Ruiz, Chief Executive Officer",
    ]
    assert [d.number for d in created.dial_in] == ["+18665550199", "+19135550123"]
    assert created.passcode == generated[0] and created.glossary == ["Northwind", "NWB-201"]
    assert created.local_start.strftime("%Y-%m-%d %H:%M %Z") == "2026-11-05 16:30 EST"

    # Edit: a time the clocks skip is refused beside the date and time.
    page.locator(f"#console-event-{created.id} a.edit").click()
    page.wait_for_url(f"**/console/events/{created.id}/edit")
    assert _field(page, "event.dial_in.1.number").input_value() == "+1 913-555-0123"
    _field(page, "event.title").fill("Q3 2026 Financial Results")
    _field(page, "event.start_date").fill("2027-03-14")
    _field(page, "event.start_time").fill("02:30")
    assert "does not exist" in preview.inner_text()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_selector("#errors")
    assert "does not exist in America/New_York" in _error(page, "event.starts_at")
    assert _field(page, "event.title").input_value() == "Q3 2026 Financial Results"
    _field(page, "event.start_date").fill("2026-11-05")
    _field(page, "event.start_time").fill("16:30")
    page.screenshot(path=str(shots / "editor-edit-1366.png"), full_page=True)
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(saved)
    edited = _store(live_server).get(created.id)
    assert edited.title == "Q3 2026 Financial Results" and edited.version == 2

    # Duplicate: next quarter's draft, fresh codes, speakers and numbers kept.
    page.locator(f"#console-event-{created.id} a.duplicate").click()
    page.wait_for_url(f"**/console/events/{created.id}/duplicate")
    assert _field(page, "event.title").input_value() == "Q4 2026 Financial Results"
    assert _field(page, "event.period").input_value() == (
        "the three-month period ended December 31, 2026"
    )
    assert _field(page, "event.start_date").input_value() == "2027-02-05"
    assert _field(page, "event.passcode").input_value() not in (created.passcode, "")
    page.get_by_role("button", name="Create event").click()
    page.wait_for_url(saved)
    copy = next(e for e in _store(live_server).list_events() if e.id != created.id)
    assert copy.speakers == created.speakers and copy.dial_in == created.dial_in
    assert copy.contacts == created.contacts and copy.glossary == created.glossary
    assert {copy.passcode, copy.speaker_passcode, copy.replay_passcode}.isdisjoint(
        {created.passcode, created.speaker_passcode, created.replay_passcode}
    )
    assert copy.local_start.strftime("%Y-%m-%d %H:%M %Z") == "2027-02-05 16:30 EST"

    page.screenshot(path=str(shots / "console-1366.png"))
    page.goto(f"{live_server.url}/console/events/{copy.id}/edit")
    page.screenshot(path=str(shots / "editor-1366.png"), full_page=False)
    page.set_viewport_size(PHONE)
    page.reload()
    page.screenshot(path=str(shots / "editor-390.png"), full_page=True)
    _field(page, "event.speakers.0.phone").fill("555")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_selector("#errors")
    assert "is not a valid phone number" in _error(page, "event.speakers.0.phone")
    page.screenshot(path=str(shots / "editor-refused-390.png"))
    assert no_horizontal_overflow(page)
    assert _csp(page) == []
    # The refused saves answer 422 on purpose; Chromium logs each. Nothing else may be logged.
    refused = "the server responded with a status of 422"
    assert [p for p in problems if refused not in p] == []


def test_the_second_editor_sees_what_the_first_changed(
    chromium: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    record: EventRecord = make_event(live_server)
    contexts = [chromium.new_context(viewport=WIDE, locale="en-US") for _ in range(2)]
    try:
        first, second = (c.new_page() for c in contexts)
        edit = f"/console/events/{record.id}/edit"
        for page in (first, second):
            _log_in(page, live_server, edit)
        _field(first, "event.title").fill("Changed by the first editor")
        _field(first, "event.speakers.0.name").fill("Mark Chen")
        first.get_by_role("button", name="Save changes").click()
        first.wait_for_url(saved)

        _field(second, "event.period").fill("the second editor's period")
        second.get_by_role("button", name="Save changes").click()
        second.wait_for_selector("#conflict")
        conflict = second.locator("#conflict").inner_text()
        assert "Someone else saved this event" in conflict
        assert "Title" in conflict and "Changed by the first editor" in conflict
        assert record.title in conflict
        assert "Speaker 1 · Name" in conflict and "Mark Chen" in conflict
        # Nothing of the second editor's was written; the typing is still there.
        kept = _store(live_server).get(record.id)
        assert kept.title == "Changed by the first editor" and kept.period == record.period
        assert _field(second, "event.period").input_value() == "the second editor's period"
        second.screenshot(path=str(_shots(tmp_path) / "editor-conflict-1366.png"))
        # Saving again is a decision: it puts the second editor's form over the first's.
        second.get_by_role("button", name="Save changes").click()
        second.wait_for_url(saved)
        after = _store(live_server).get(record.id)
        assert after.period == "the second editor's period" and after.version == 3
    finally:
        for context in contexts:
            context.close()


def test_the_editor_has_no_serious_axe_findings(chromium: Any, live_server: LiveServer) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core is not vendored (run scripts/build-static)")
    scheduled = make_event(live_server)
    ended = make_event(
        live_server, passcode="1231231", speaker_passcode="3213213", replay_passcode="4564"
    )
    for step in (EventState.LIVE, EventState.ENDED):
        _store(live_server).set_state(ended.id, step)
    found: dict[str, list[dict[str, Any]]] = {}
    for viewport in (WIDE, PHONE):
        context = chromium.new_context(viewport=viewport, locale="en-US", bypass_csp=True)
        try:
            page = context.new_page()
            _log_in(page, live_server)
            for name, path in (
                ("console", "/console"),
                ("new", "/console/new-event"),
                ("edit", f"/console/events/{scheduled.id}/edit"),
                ("ended", f"/console/events/{ended.id}/edit"),
            ):
                page.goto(live_server.url + path)
                if name == "new":  # with its errors shown
                    page.get_by_role("button", name="Create event").click()
                    page.wait_for_selector("#errors")
                page.add_script_tag(path=str(AXE))
                found[f"{name} {viewport['width']}"] = page.evaluate(RUN_AXE)
        finally:
            context.close()
    report = [
        f"{page}: {v['impact']} {v['id']} {v['nodes']}" for page, vs in found.items() for v in vs
    ]
    print("\naxe-core findings:\n" + ("\n".join(report) or "none"))
    serious = [line for line in report if line.split(": ", 1)[1].split(" ")[0] in FAILING]
    assert serious == []
