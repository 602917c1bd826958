"""Logins, sessions, tokens and security headers, over real HTTP on real SQLite."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from callbridge.events.schema import EventState
from callbridge.store.db import Database
from callbridge.store.models import UserRow, utcnow
from callbridge.store.users import Operator, UserStore
from callbridge.web.app import create_app
from callbridge.web.security import PAGE_POLICY
from callbridge.web.throttle import (
    ACCOUNT_RULE,
    MAX_HOLD,
    PAIR_RULE,
    SOURCE_RULE,
    BackoffRule,
    LoginThrottle,
)
from callbridge.webcast.live import LiveWebcast
from tests.support.ports import free_port
from tests.support.procs import peak_rss_kib
from tests.telephony.conftest import RunningServer, start_server
from tests.web.conftest import OPERATOR, PASSWORD, LiveServer, make_settings
from tests.web.test_browser import make_event
from tests.webcast.conftest import RealTimeFeed

COOKIE = "callbridge_session"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def log_in(client: TestClient, password: str = PASSWORD, name: str = OPERATOR) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/console"},
        follow_redirects=False,
    )


def users_of(client: TestClient) -> UserStore:
    value: UserStore = client.app.state.users  # type: ignore[attr-defined]
    return value


def logged_in(client: TestClient) -> bool:
    return client.get("/console", follow_redirects=False).status_code == 200


def test_a_login_is_a_session_on_the_server(client: TestClient) -> None:
    assert log_in(client).status_code == 303
    assert logged_in(client)
    (session,) = users_of(client).credentials(OPERATOR)
    assert session.kind == "session" and session.label == "testclient"
    # The cookie names a session, not the operator.
    assert "operator_id" not in client.cookies[COOKIE]


def test_logout_ends_the_session_even_for_a_kept_cookie(client: TestClient) -> None:
    log_in(client)
    kept = client.cookies[COOKIE]
    token = csrf_of(client.get("/console").text)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code
    assert not logged_in(client)
    client.cookies.set(COOKIE, kept)
    assert not logged_in(client)
    assert users_of(client).credentials(OPERATOR) == []


def test_a_revoked_session_and_token_are_refused(client: TestClient) -> None:
    log_in(client)
    users = users_of(client)
    token = users.issue_token(OPERATOR, "ci")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/events/1/audit", headers=auth).status_code in (200, 404)
    for credential in users.credentials(OPERATOR):
        users.revoke(OPERATOR, credential.id)
    assert not logged_in(client)
    assert client.get("/api/events/1/audit", headers=auth).status_code == 401


def test_a_password_change_ends_old_sessions_and_tokens(client: TestClient) -> None:
    log_in(client)
    users = users_of(client)
    token = users.issue_token(OPERATOR)
    users.set_password(OPERATOR, "a brand new password")
    assert not logged_in(client)
    created = client.post(
        "/api/events", json={}, headers={"Authorization": f"Bearer {token}"}
    ).status_code
    assert created == 401
    assert log_in(client, PASSWORD).status_code == 401
    assert log_in(client, "a brand new password").status_code == 303


def test_an_expired_token_is_refused(client: TestClient) -> None:
    users = users_of(client)
    expired = users.issue_token(
        OPERATOR, expires_in=timedelta(hours=1), now=utcnow() - timedelta(hours=2)
    )
    live = users.issue_token(OPERATOR, expires_in=timedelta(hours=1))
    answer = client.post("/api/events", json={}, headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert (
        client.post("/api/events", json={}, headers={"Authorization": f"Bearer {live}"})
    ).status_code == 422


def test_failed_logins_back_off_then_get_429_with_retry_after(client: TestClient) -> None:
    # The first lock as long as the ceiling allows, so a slow machine cannot outlast it.
    slow = BackoffRule(PAIR_RULE.free_failures, PAIR_RULE.max_delay / 2, PAIR_RULE.max_delay, 900)
    client.app.state.login_throttle = LoginThrottle(pair_rule=slow)  # type: ignore[attr-defined]
    answers = [
        log_in(client, "wrong password!").status_code for _ in range(PAIR_RULE.free_failures)
    ]
    assert answers == [401] * PAIR_RULE.free_failures
    refused = log_in(client, "wrong password!")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= PAIR_RULE.max_delay
    assert "Too many failed logins" in refused.text
    # While this name is locked at this address even the right password waits: nothing is
    # checked.
    assert log_in(client).status_code == 429


def test_strangers_spraying_a_name_cannot_lock_out_the_operators_browser(
    client: TestClient, app: FastAPI
) -> None:
    assert log_in(client).status_code == 303  # this browser is now known for OPERATOR
    throttle = app.state.login_throttle

    def strangers_spray() -> None:
        for n in range(ACCOUNT_RULE.free_failures + 1):
            throttle.begin(OPERATOR, f"198.51.100.{n}", time.monotonic())

    def timed_log_in(browser: TestClient) -> tuple[int, float]:
        began = time.monotonic()
        status = log_in(browser).status_code
        return status, time.monotonic() - began

    # A new browser with the right password: in, after a short wait (never a lock).
    strangers_spray()
    with TestClient(app) as stranger:
        status, took = timed_log_in(stranger)
    assert status == 303 and ACCOUNT_RULE.base_delay <= took < MAX_HOLD + 3
    # The operator's own browser does not even wait.
    strangers_spray()
    status, took = timed_log_in(client)
    assert status == 303 and took < ACCOUNT_RULE.base_delay
    # The cookie is signed: a forged one counts for nothing (it waits as a new browser).
    strangers_spray()
    genuine = client.cookies["callbridge_known"]
    client.cookies.clear()
    client.cookies.set("callbridge_known", genuine + "x")
    status, took = timed_log_in(client)
    assert status == 303 and took >= ACCOUNT_RULE.base_delay


def test_the_account_page_lists_and_revokes_sessions_and_tokens(client: TestClient) -> None:
    log_in(client)
    users = users_of(client)
    token = users.issue_token(OPERATOR, "ci", expires_in=timedelta(days=30))
    elsewhere = users.open_session(_operator(client), "192.0.2.9")
    page = client.get("/console/account")
    assert page.status_code == 200
    ids = re.findall(r'id="credential-([st]\d+)"', page.text)
    assert len(ids) == 3 and "(this browser)" in page.text and "192.0.2.9" in page.text
    token_id = next(i for i in ids if i.startswith("t"))
    forged = client.post("/console/account/revoke", data={"id": token_id, "csrf_token": "x"})
    assert forged.status_code == 403
    csrf = csrf_of(page.text)
    revoked = client.post("/console/account/revoke", data={"id": token_id, "csrf_token": csrf})
    assert revoked.status_code == 200 and f"{token_id} revoked." in revoked.text
    assert users.check_token(token) is None
    other = next(c.id for c in users.credentials(OPERATOR) if c.label == "192.0.2.9")
    client.post("/console/account/revoke", data={"id": other, "csrf_token": csrf})
    assert users.check_session(elsewhere) is None
    missing = client.post("/console/account/revoke", data={"id": "t999", "csrf_token": csrf})
    assert "has no session or token t999" in missing.text
    (mine,) = [c.id for c in users.credentials(OPERATOR)]
    out = client.post(
        "/console/account/revoke", data={"id": mine, "csrf_token": csrf}, follow_redirects=False
    )
    assert out.headers["location"] == "/login" and not logged_in(client)


def _operator(client: TestClient) -> Operator:
    with users_of(client).database.session() as session:
        row = session.scalars(select(UserRow).where(UserRow.name == OPERATOR)).one()
        return Operator(row.id, row.name)


def test_changing_the_password_on_the_web_ends_every_other_session(client: TestClient) -> None:
    log_in(client)
    users = users_of(client)
    token = users.issue_token(OPERATOR)
    other = users.open_session(_operator(client), "192.0.2.9")
    csrf = csrf_of(client.get("/console/account").text)

    def change(current: str, new: str, again: str) -> httpx.Response:
        return client.post(
            "/console/account/password",
            data={"current": current, "new": new, "again": again, "csrf_token": csrf},
        )

    assert change(PASSWORD, "a brand new password", "a brand new typo!").status_code == 422
    assert change(PASSWORD, "short", "short").status_code == 422
    wrong = change("not my password", "a brand new password", "a brand new password")
    assert wrong.status_code == 401 and "The current password is wrong." in wrong.text
    done = change(PASSWORD, "a brand new password", "a brand new password")
    assert done.status_code == 200 and "Password changed." in done.text
    assert users.check_token(token) is None and users.check_session(other) is None
    assert logged_in(client)  # this browser got a fresh session
    assert [c.kind for c in users.credentials(OPERATOR)] == ["session"]
    assert users.authenticate(OPERATOR, "a brand new password") is not None


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": PAGE_POLICY,
}


@pytest.mark.parametrize(
    "path",
    ["/events", "/login", "/console", "/api/events", "/static/style.css", "/nowhere", "/"],
)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (path, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers


def test_the_api_docs_keep_framing_headers_but_no_page_policy(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-frame-options"] == "DENY"


def test_secure_cookies_mark_the_cookie_and_send_hsts(
    tmp_path: Path, sqlite_database: Database
) -> None:
    UserStore(sqlite_database).add(OPERATOR, PASSWORD)
    app = create_app(make_settings(tmp_path, sqlite_database, secure_cookies=True), sqlite_database)
    with TestClient(app, base_url="https://testserver") as client:
        page = client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert log_in(client).status_code == 303
        assert logged_in(client)


@pytest.fixture
def small_pool_app(tmp_path: Path, sqlite_database: Database) -> FastAPI:
    UserStore(sqlite_database).add(OPERATOR, PASSWORD)
    settings = make_settings(tmp_path, sqlite_database, password_checks=1, password_check_queue=1)
    return create_app(settings, sqlite_database)


def test_a_full_password_pool_answers_503_at_once(small_pool_app: FastAPI) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(small_pool_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        attempts = [(f"guess{n}", f"127.0.1.{n + 1}") for n in range(30)]
        answers = asyncio.run(login_flood(f"http://127.0.0.1:{port}", attempts))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert set(answers) <= {401, 503}
    assert answers.count(503) >= 20
    assert answers.count(401) >= 2
    assert small_pool_app.state.password_pool.refused == answers.count(503)


# A login flood against a real `callbridge serve` ------------------------------


def peak_rss_mib(pid: int) -> float:
    """The high-water resident memory (VmHWM) of the server's processes, summed, in MiB."""
    return peak_rss_kib(pid) / 1024


async def login_flood(url: str, attempts: list[tuple[str, str]]) -> list[int]:
    """One wrong login per (name, source address), all sent at the same moment.

    Each client first fetches the login form (its cookie and CSRF token); the
    posts go out together once every client holds one.
    """
    gate = asyncio.Event()
    ready = 0

    async def one(name: str, source: str) -> int:
        nonlocal ready
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as http:
            token = csrf_of((await http.get("/login")).text)
            ready += 1
            if ready == len(attempts):
                gate.set()
            await gate.wait()
            answer = await http.post(
                "/login", data={"name": name, "password": "wrong password!", "csrf_token": token}
            )
            return answer.status_code

    return list(await asyncio.gather(*(one(name, source) for name, source in attempts)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("auth")) as server:
        yield server


def operator_logs_in(url: str, within: float) -> bool:
    """The real operator, from 127.0.0.1, honouring Retry-After, within ``within`` seconds."""
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < deadline:
            token = csrf_of(http.get("/login").text)
            answer = http.post(
                "/login",
                data={"name": "operator", "password": "correct horse battery", "csrf_token": token},
            )
            if answer.status_code == 303:
                return http.get("/console").status_code == 200
            assert answer.status_code in (429, 503), answer.status_code
            time.sleep(float(answer.headers["Retry-After"]))
    return False


def test_a_login_flood_is_throttled_and_memory_stays_bounded(served: RunningServer) -> None:
    pid = served.process.pid
    assert operator_logs_in(served.http_url, within=5)
    before = peak_rss_mib(pid)
    # A stranger at 127.0.0.2 sends 120 guesses at once for the operator's name.
    stranger = asyncio.run(login_flood(served.http_url, [("operator", "127.0.0.2")] * 120))
    assert set(stranger) <= {401, 429, 503}, stranger
    assert stranger.count(429) >= 100
    # Only the free attempts (and those after a lock ran out) reach argon2.
    assert stranger.count(401) <= SOURCE_RULE.free_failures + 2
    # 120 strangers at once, each from its own address with its own name: the
    # throttle cannot help, the bounded pool does.
    crowd = asyncio.run(
        login_flood(served.http_url, [(f"guess{n}", f"127.0.2.{n + 1}") for n in range(120)])
    )
    assert set(crowd) <= {401, 503}, crowd
    assert crowd.count(503) >= 60
    after = peak_rss_mib(pid)
    print(f"\nlogin flood: peak RSS {before:.0f} MiB before, {after:.0f} MiB after")
    assert after - before < 80, (before, after)
    # The stranger cannot lock the operator out.
    assert operator_logs_in(served.http_url, within=10)
    served.wait_for(lambda: served.process.poll() is None)


def test_server_sent_events_stream_through_the_headers(served: RunningServer) -> None:
    record = served.create_event()
    auth = {"Authorization": f"Bearer {served.token}"}
    with (
        httpx.Client(base_url=served.http_url, timeout=10) as http,
        http.stream("GET", f"/api/events/{record.id}/live/stream", headers=auth) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["x-frame-options"] == "DENY"
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert next(stream.iter_text()).startswith("data: ")


# The pages under their policy, in real Chromium --------------------------------

# Installed before any page script runs: every CSP refusal lands in window.cspViolations.
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def visit(page: Any, url: str) -> list[str]:
    """Open ``url``, check its answer carries the policy; the page's CSP refusals so far."""
    response = page.goto(url)
    assert response is not None and response.ok, url
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    violations: list[str] = page.evaluate("window.cspViolations")
    return violations


@pytest.mark.browser
def test_no_page_breaks_its_policy_and_the_webcast_plays(
    page: Any, live_server: LiveServer, app: FastAPI
) -> None:
    record = make_event(live_server, registration="off")
    app.state.events.set_state(record.id, EventState.LIVE)
    webcast = LiveWebcast(app.state.webcast_media.live_dir(record.id))
    feed = RealTimeFeed(webcast)
    feed.thread.start()
    page.add_init_script(WATCH_CSP)
    refused: list[str] = []
    page.on(
        "console",
        lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    base = live_server.url
    try:
        for path in ("/login", "/events", f"/events/{record.id}/announcement"):
            assert visit(page, base + path) == [], path
        assert visit(page, f"{base}/events/{record.id}/webcast") == []
        # hls.js plays the live call (MSE from blob: URLs, perhaps a blob: worker).
        # (polled from here: wait_for_function would need 'unsafe-eval' in the page)
        deadline = time.monotonic() + 30
        while page.evaluate("document.getElementById('media').currentTime") < 2:
            assert page.evaluate("window.cspViolations") == []
            assert time.monotonic() < deadline, "the live webcast did not play"
            page.wait_for_timeout(200)
        assert page.evaluate("window.cspViolations") == []
        page.goto(f"{base}/login?next=/console")
        page.fill("input[name=name]", OPERATOR)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console")
        assert page.evaluate("window.cspViolations") == []
        assert visit(page, f"{base}/console/events/{record.id}") == []
        assert visit(page, f"{base}/console/account") == []
    finally:
        feed.stop.set()
        feed.thread.join()
        webcast.close()
    assert refused == []


@pytest.mark.browser
def test_another_site_cannot_frame_the_console(page: Any, live_server: LiveServer) -> None:
    page.set_content(f'<iframe id="f" src="{live_server.url}/login"></iframe>')
    page.wait_for_timeout(1500)
    framed = [f for f in page.frames if f != page.main_frame]
    assert framed, "the iframe exists"
    # Chromium refuses to render it: the frame holds an error page, not the form.
    assert all("Operator login" not in frame.content() for frame in framed)
