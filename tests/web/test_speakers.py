"""The event's speaker list through the API and on the moderator's page; bad entries refused.

Each entry is a name (the console's naming rule: one line, at most 100
characters with its title), an optional title and an optional phone, kept in
E.164. A refused entry names the field and the reason; markup in a name is
text on every page.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from callbridge.events.schema import EventState
from tests.web.test_api import _with, body
from tests.web.test_pages import login, store, textarea

CFO = {"name": "Mark Chen", "title": "Chief Financial Officer", "phone": "+1 (212) 555-1234"}
MARKUP = {"name": "<script>alert(1)</script> Ana", "title": "<b>CEO</b>"}


def with_speakers(*speakers: dict[str, Any]) -> dict[str, Any]:
    return _with(body(), list(speakers), "event", "speakers")


def test_speakers_are_kept_with_their_numbers_in_e164(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = client.post("/api/events", json=with_speakers(CFO, MARKUP), headers=auth)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["speakers"] == [
        {"name": "Mark Chen", "title": "Chief Financial Officer", "phone": "+12125551234"},
        {"name": "<script>alert(1)</script> Ana", "title": "<b>CEO</b>", "phone": None},
    ]
    # A change replaces the list; a scheduled event's other fields stay.
    patched = client.patch(
        f"/api/events/{event['id']}",
        json={"speakers": [{"name": "  Dana   Fox ", "phone": "+44 20 7946 0000"}]},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["speakers"] == [
        {"name": "Dana Fox", "title": None, "phone": "+442079460000"}
    ]
    assert patched.json()["title"] == event["title"]


BAD_SPEAKERS = [
    pytest.param({"name": "Mark Chen", "phone": "+1 555-123-4567"}, [0, "phone"],
                 "not a valid phone number", id="invalid-phone"),
    pytest.param({"name": "Mark Chen", "phone": "call me"}, [0, "phone"],
                 "not a phone number", id="not-a-phone"),
    pytest.param({"name": "x" * 101}, [0, "name"], "at most 100 characters", id="name-too-long"),
    pytest.param({"name": "   "}, [0, "name"], "cannot be blank", id="blank-name"),
    pytest.param({"name": "Mark\u202eChen"}, [0, "name"], "control characters", id="bidi-override"),
    pytest.param({"name": "Mark Chen", "title": "x" * 95}, [0, "title"],
                 "name and title together are at most 100", id="label-too-long"),
    pytest.param({"title": "CFO"}, [0, "name"], "required", id="no-name"),
    pytest.param({"name": "Mark Chen", "email": "m@x.example"}, [0, "email"], "not permitted",
                 id="unknown-key"),
]  # fmt: skip


@pytest.mark.parametrize(("speaker", "loc", "reason"), BAD_SPEAKERS)
def test_a_bad_entry_names_the_field_and_why(
    client: TestClient, auth: dict[str, str], speaker: dict[str, Any], loc: list[Any], reason: str
) -> None:
    response = client.post("/api/events", json=with_speakers(speaker), headers=auth)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    full = ["body", "event", "speakers", *loc]
    assert any(p["loc"] == full and reason in p["msg"] for p in problems), problems
    # The same rule holds for a change.
    event = client.post("/api/events", json=body(), headers=auth).json()
    changed = client.patch(f"/api/events/{event['id']}", json={"speakers": [speaker]}, headers=auth)
    assert changed.status_code == 422
    assert any(
        p["loc"] == ["body", "speakers", *loc] and reason in p["msg"]
        for p in changed.json()["detail"]
    ), changed.json()
    client.delete(f"/api/events/{event['id']}", headers=auth)


def test_a_number_listed_twice_and_too_many_speakers_are_refused(
    client: TestClient, auth: dict[str, str]
) -> None:
    twice = with_speakers(CFO, {"name": "Lee Park", "phone": "+12125551234"})
    response = client.post("/api/events", json=twice, headers=auth)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "event", "speakers"]
    assert "+12125551234 is listed for both Mark Chen and Lee Park" in problem["msg"]
    crowd = with_speakers(*({"name": f"Speaker {n}"} for n in range(21)))
    response = client.post("/api/events", json=crowd, headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "event", "speakers"]


def test_speakers_change_while_live_and_not_after(client: TestClient, auth: dict[str, str]) -> None:
    events = client.app.state.events  # type: ignore[attr-defined]
    event = client.post("/api/events", json=body(), headers=auth).json()
    events.set_state(event["id"], EventState.LIVE)
    late = client.patch(f"/api/events/{event['id']}", json={"speakers": [CFO]}, headers=auth)
    assert late.status_code == 200, late.text
    assert late.json()["speakers"][0]["phone"] == "+12125551234"
    # Alone: with another field the live event's change is refused as before.
    mixed = client.patch(
        f"/api/events/{event['id']}", json={"speakers": [], "title": "Other"}, headers=auth
    )
    assert mixed.status_code == 409
    events.set_state(event["id"], EventState.ENDED)
    over = client.patch(f"/api/events/{event['id']}", json={"speakers": []}, headers=auth)
    assert over.status_code == 409


def test_the_moderators_page_lists_the_speakers_as_text(
    client: TestClient, auth: dict[str, str]
) -> None:
    event = client.post("/api/events", json=with_speakers(CFO, MARKUP), headers=auth).json()
    login(client)
    page = client.get(f"/console/events/{event['id']}").text
    assert "<script>alert(1)" not in page and "<b>CEO" not in page
    label = html.escape("<script>alert(1)</script> Ana, <b>CEO</b>")
    # Offered in the name dialog, as a one-click choice and as a suggestion.
    assert f'data-speaker-label="{label}">{label}</button>' in page
    assert f'<option value="{label}">' in page
    assert 'data-speaker-label="Mark Chen, Chief Financial Officer"' in page
    # And editable in the speakers form, numbers as stored.
    assert 'value="+12125551234"' in page
    assert 'id="speakers-form"' in page


def test_the_console_form_creates_the_speaker_list_and_names_a_bad_entry(
    client: TestClient,
) -> None:
    token = login(client)
    template = textarea(client.get("/console").text)
    # The prefilled event lists a speaker: it is kept, its phone in E.164.
    assert (
        client.post(
            "/console/events", data={"event_toml": template, "csrf_token": token}
        ).status_code
        == 200
    )
    [record] = store(client).list_events()
    assert [(s.label, s.phone) for s in record.speakers] == [
        ("Mark Chen, Chief Financial Officer", "+16175550147")
    ]
    bad = template.replace('phone = "+1 617-555-0147"', 'phone = "+1 555"').replace(
        'name = "Mark Chen"', 'name = "Mark <i>Chen</i>"'
    )
    response = client.post("/console/events", data={"event_toml": bad, "csrf_token": token})
    assert response.status_code == 422
    assert "event.speakers.0.phone: &#39;+1 555&#39; is not a valid phone number" in response.text
    assert "Mark <i>Chen" not in response.text  # the TOML comes back as text
