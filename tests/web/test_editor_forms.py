"""The editor's form posts without a browser: CSRF, who may, what a started call allows."""

from __future__ import annotations

from fastapi.testclient import TestClient

from callbridge.events import form
from callbridge.events.schema import EventState
from callbridge.store.events import EventStore
from tests.web.test_browser import make_event
from tests.web.test_pages import csrf_of, login


def _store(client: TestClient) -> EventStore:
    store: EventStore = client.app.state.events  # type: ignore[attr-defined]
    return store


def test_posts_without_the_sessions_token_are_refused(client: TestClient) -> None:
    login(client)
    record = make_event(client)  # type: ignore[arg-type]
    values = form.values_of(record)
    for path in ("/console/new-event", f"/console/events/{record.id}/edit"):
        for token in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**values, **token, "version": "1"})
            assert answer.status_code == 403, path
    assert len(_store(client).list_events()) == 1
    assert _store(client).get(record.id).version == 1


def test_logged_out_the_editor_sends_to_the_login(client: TestClient) -> None:
    for path in ("/console/new-event", "/console/events/1/edit", "/console/events/1/duplicate"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code in (303, 307) and "/login" in answer.headers["location"]


def test_a_started_call_is_shown_not_changed(client: TestClient) -> None:
    login(client)
    record = make_event(client)  # type: ignore[arg-type]
    _store(client).set_state(record.id, EventState.LIVE)
    page = client.get(f"/console/events/{record.id}/edit")
    assert page.status_code == 200
    assert "its fields no longer change here" in page.text
    assert '<fieldset class="all" disabled>' in page.text
    values = form.values_of(_store(client).get(record.id))
    values["event.title"] = "Too late"
    answer = client.post(
        f"/console/events/{record.id}/edit",
        data={**values, "csrf_token": csrf_of(page.text), "version": "2"},
    )
    assert answer.status_code == 422
    assert "only scheduled events change" in answer.text
    assert _store(client).get(record.id).title == record.title


def test_an_unknown_event_is_404(client: TestClient) -> None:
    login(client)
    for path in ("/console/events/999/edit", "/console/events/999/duplicate"):
        assert client.get(path).status_code == 404


def test_a_flood_of_fields_is_refused_and_nothing_changes(client: TestClient) -> None:
    token = login(client)
    flood = "&".join(f"event.speakers.{i}.name=x" for i in range(700))
    answer = client.post(
        "/console/new-event",
        content=f"csrf_token={token}&{flood}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert _store(client).list_events() == []


def test_an_ended_event_is_archived_from_its_page(client: TestClient) -> None:
    login(client)
    record = make_event(client)  # type: ignore[arg-type]
    for step in (EventState.LIVE, EventState.ENDED):
        _store(client).set_state(record.id, step)
    page = client.get(f"/console/events/{record.id}/edit")
    action = f'action="/console/events/{record.id}/archive"'
    assert action in page.text
    answer = client.post(
        f"/console/events/{record.id}/archive",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert _store(client).get(record.id).state is EventState.ARCHIVED
    assert action not in client.get(f"/console/events/{record.id}/edit").text
