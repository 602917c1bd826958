"""Issue 27's finding 5 against a real `callbridge serve`: a question flood from one
address that registers again for each question, a registration flood, and the
moderator silencing one asker (the API, and the console's button in Chromium; audited).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from callbridge.web.limits import QUESTIONS_PER_ADDRESS, REGISTRATIONS_PER_ADDRESS
from tests.support.chromium import launch
from tests.telephony.conftest import RunningServer, start_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("questions")) as server:
        yield server


def live_event(server: RunningServer) -> int:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    return event.id


def register(http: httpx.Client, event_id: int, name: str, email: str) -> httpx.Response:
    page = http.get(f"/events/{event_id}/webcast").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return http.post(
        f"/events/{event_id}/webcast/register",
        data={"csrf_token": match.group(1), "name": name, "firm": "", "email": email},
    )


def ask(http: httpx.Client, event_id: int, text: str) -> httpx.Response:
    return http.post(f"/api/events/{event_id}/questions", json={"text": text})


def client_at(server: RunningServer, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.http_url, transport=transport, timeout=10)


def test_a_question_flood_with_registering_again_stops_at_the_addresss_limit(
    served: RunningServer,
) -> None:
    event_id = live_event(served)
    began = time.monotonic()
    codes: Counter[int | str] = Counter()
    refusals = []
    for n in range(30):
        with client_at(served, "127.0.0.2") as flooder:  # a fresh browser each time
            registered = register(flooder, event_id, f"Bot {n}", f"bot{n}@example.com")
            if registered.status_code != 303:
                codes[f"registration {registered.status_code}"] += 1
                continue
            answer = ask(flooder, event_id, f"Question number {n}?")
            codes[answer.status_code] += 1
            if answer.status_code == 429:
                refusals.append(answer)
    spent = time.monotonic() - began
    print(f"\n30 questions from one address, registering again each time, {spent:.1f} s: {codes}")
    allowed = QUESTIONS_PER_ADDRESS.burst + spent / QUESTIONS_PER_ADDRESS.every + 1
    assert 1 <= codes[201] <= allowed, (codes, spent)
    assert codes[429] >= 30 - REGISTRATIONS_PER_ADDRESS.burst - allowed, codes
    refused = refusals[0]
    assert "too many questions from your network" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= QUESTIONS_PER_ADDRESS.every + 1
    stored = served.api("GET", f"/api/events/{event_id}/questions").json()
    assert len(stored) == codes[201]
    # Someone else, elsewhere, still asks.
    with client_at(served, "127.0.0.3") as analyst:
        assert register(analyst, event_id, "Ana Ruiz", "ana@fjord.example").status_code == 303
        assert ask(analyst, event_id, "What drove the margin?").status_code == 201


def test_a_registration_flood_from_one_address_stops_at_its_limit(served: RunningServer) -> None:
    event_id = live_event(served)
    began = time.monotonic()
    codes: Counter[int] = Counter()
    refusals = []
    for n in range(REGISTRATIONS_PER_ADDRESS.burst + 10):
        with client_at(served, "127.0.0.4") as flooder:
            answer = register(flooder, event_id, f"Bot {n}", f"bot{n}@example.com")
            codes[answer.status_code] += 1
            if answer.status_code == 429:
                refusals.append(answer)
    spent = time.monotonic() - began
    allowed = REGISTRATIONS_PER_ADDRESS.burst + spent / REGISTRATIONS_PER_ADDRESS.every + 1
    assert codes[303] <= allowed and codes[429] >= 10 - spent / REGISTRATIONS_PER_ADDRESS.every - 1
    # The first refusal, not the last request: on a loaded machine the flood outlasts a
    # refill period and its last registration is rightly let in (a CI-like run saw it).
    assert refusals, codes
    refused = refusals[0]
    assert "too many registrations from your network" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    csv = served.api("GET", f"/api/events/{event_id}/attendance.csv").text
    assert csv.count("@example.com") == codes[303]


def test_the_moderator_silences_one_asker(served: RunningServer) -> None:
    event_id = live_event(served)
    with client_at(served, "127.0.0.5") as heckler:
        assert register(heckler, event_id, "Heckler", "heckler@example.com").status_code == 303
        asked = ask(heckler, event_id, "Buy my newsletter?")
        assert asked.status_code == 201
        key = asked.json()["id"]
        silenced = served.api("POST", f"/api/events/{event_id}/questions/{key}/silence")
        assert silenced.status_code == 200 and silenced.json()["silenced"] is True
        refused = ask(heckler, event_id, "And again?")
        assert refused.status_code == 403
        assert "not taking further questions from you" in refused.json()["detail"]
    # Registering again with the same email, from elsewhere, does not lift it.
    with client_at(served, "127.0.0.6") as again:
        assert register(again, event_id, "Heckler Two", "Heckler@example.com").status_code == 303
        assert ask(again, event_id, "Hello again?").status_code == 403
    audit = served.api("GET", f"/api/events/{event_id}/audit").json()
    (entry,) = [e for e in audit if e["kind"] == "asker_silenced"]
    assert entry["actor"] == "operator" and entry["detail"]["question"] == key
    assert (
        served.api("POST", f"/api/events/{event_id}/questions/q999999/silence").status_code == 404
    )
    assert (
        httpx.post(
            f"{served.http_url}/api/events/{event_id}/questions/{key}/silence", timeout=10
        ).status_code
        == 401
    )  # operators only


@pytest.mark.browser
def test_the_console_silences_an_asker_from_their_questions_row(served: RunningServer) -> None:
    event_id = live_event(served)
    with client_at(served, "127.0.0.8") as heckler:
        assert register(heckler, event_id, "Heckler", "loud@example.com").status_code == 303
        assert ask(heckler, event_id, "Buy my newsletter?").status_code == 201
        with launch() as browser:
            console = browser.new_page()
            console.goto(f"{served.http_url}/login?next=/console/events/{event_id}")
            console.fill("input[name=name]", "operator")
            console.fill("input[name=password]", "correct horse battery")
            console.click("button[type=submit]")
            console.wait_for_url(f"**/console/events/{event_id}")
            row = console.locator("#queue li.written")
            row.wait_for(timeout=10_000)
            console.once("dialog", lambda dialog: dialog.accept())
            row.get_by_role("button", name="Silence asker").click()
            console.wait_for_selector("#problem:text('No further written questions from')")
        refused = ask(heckler, event_id, "And again?")
        assert refused.status_code == 403, refused.text
    audit = served.api("GET", f"/api/events/{event_id}/audit").json()
    assert [e["actor"] for e in audit if e["kind"] == "asker_silenced"] == ["operator"]
