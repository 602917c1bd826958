"""PostgreSQL stopped mid-call for a minute and started again (issue 25, item 5).

A real `callbridge serve` on a PostgreSQL of the test's own (the session's
server is shared with other tests; this one is stopped). Two sipp callers are
on the call; PostgreSQL is stopped (``pg_ctl stop -m fast``) for ``OUTAGE``
seconds, twelve times the journal writer's longest backoff; meanwhile a third
caller dials in with the passcode, is admitted, and presses *1. Then
PostgreSQL starts again. Nobody was dropped (each sipp caller hangs up
itself, on time), and the call log holds every join, leave and *1 exactly
once.

The web process needs the database for the operator's token, so during the
outage the test asks the media plane itself, over its control socket, as the
web process does. The moderator's desk, opened before the outage, shows the
outage's banner (screenshots at 1366×768 and 390×844 under tmp_path) and
drops it when the database is back.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbridge.bridge.control import LiveView
from callbridge.bridge.outage import MAX_BACKOFF
from callbridge.control.client import RemoteBridge
from callbridge.store import layout
from callbridge.store.calllog import CallLog, LogKind, entry_key
from tests.support.chromium import launch
from tests.support.pcap import passcode_stream
from tests.support.postgres import PostgresServer, find_bin_dir
from tests.support.sipp import Dialing
from tests.support.wait import wait_until
from tests.telephony.conftest import RunningServer, need, start_server

# Not ``serial``: it measures no timing (calls kept, rows written once), and most of
# its two minutes is the outage's waiting, which the parallel part overlaps.
pytestmark = [pytest.mark.sipp, pytest.mark.postgres, pytest.mark.browser]

OUTAGE = 60.0  # the figure
WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
assert OUTAGE > 10 * MAX_BACKOFF  # the writer retries many times, and fails each time


def _live(server: RunningServer, event_id: int) -> LiveView:
    """The console's view, from the media plane's control socket (no database on the way)."""

    async def ask() -> LiveView:
        remote = RemoteBridge(layout.control_socket(server.data_dir), timeout=5)
        link = asyncio.create_task(remote.run())
        try:
            assert await remote.wait_connected(5)
            return await remote.live(event_id)
        finally:
            await remote.close()
            link.cancel()

    # In a thread of its own: Playwright's sync API keeps an event loop on this one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(ask())).result(timeout=30)


def _caller(server: RunningServer, tmp: Path, name: str, codes: list[str], stay: float) -> Dialing:
    """A sipp caller who keys ``codes``, then talks (a low tone); hangs up after ``stay`` s."""
    t = np.arange(160) / 8000
    tone = (2000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    folder = tmp / name
    folder.mkdir()
    return Dialing(
        server.sip_target,
        folder,
        passcode_stream(codes, between_codes=2.0, tone=tone, talk_after=stay + 5),
        name=name,
        stay_ms=int(stay * 1000),
        timeout=stay + 40,
    )


def test_a_database_outage_mid_call_drops_nobody_and_writes_everything_once(
    tmp_path: Path,
) -> None:
    need("sipp")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed")
        pytest.skip("PostgreSQL is not installed")
    postgres = PostgresServer(bin_dir)
    postgres.start()
    try:
        url = postgres.create_database()
        home = tmp_path / "server"
        home.mkdir()
        with start_server(home, db_url=url) as server, launch() as browser:
            _ride_out(server, postgres, tmp_path, browser)
    finally:
        postgres.stop()


def _desks(server: RunningServer, browser: Any, event_id: int) -> list[Any]:
    """The moderator's desk open at 1366×768 and at 390×844 (logged in while the database is up)."""
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.goto(f"{server.http_url}/login?next=/console/events/{event_id}")
    page.fill("input[name=name]", "operator")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/console/events/{event_id}")
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(f"{server.http_url}/console/events/{event_id}")
    for desk in (page, phone):
        desk.wait_for_selector("#desk[data-database=reachable]", state="attached")
    return [page, phone]


def _ride_out(server: RunningServer, postgres: PostgresServer, tmp: Path, browser: Any) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    desks = _desks(server, browser, event.id)
    assert not desks[0].locator("#db-outage").is_visible()
    # On before the outage, and until well after it.
    before = [
        _caller(server, tmp, "speaker", [event.speaker_passcode], OUTAGE + 45),
        _caller(server, tmp, "listener", [event.passcode], OUTAGE + 45),
    ]
    server.wait_for(lambda: len(server.participants(event.id)) == 2, timeout=30)

    postgres.pause()
    stopped = time.monotonic()
    # The media plane notices within its probe interval, and the console says so.
    wait_until(
        lambda: not _live(server, event.id).database_reachable,
        15,
        "the media plane to see the database gone",
        lambda: server.log()[-3000:],
        interval=0.5,
    )

    # A new caller keys the passcode and *1: admitted on the kept codes, queued.
    during = _caller(server, tmp, "newcomer", [event.passcode + "#", "*1"], OUTAGE)

    def newcomer_queued() -> bool:
        view = _live(server, event.id)
        return len(view.participants) == 3 and len(view.queue) == 1

    wait_until(
        newcomer_queued,
        30,
        "the newcomer admitted and queued",
        lambda: server.log()[-3000:],
        interval=0.5,
    )
    view = _live(server, event.id)
    assert not view.database_reachable
    assert view.writes_waiting >= 2, view  # its join and its *1, at least, wait
    # The moderator's desk says so, on a wide screen and on a phone.
    for desk, size in zip(desks, ("1366x768", "390x844"), strict=True):
        desk.wait_for_selector("#db-outage", state="visible", timeout=15_000)
        assert "Database unreachable" in desk.locator("#db-outage").inner_text()
        assert "to be saved when it is back" in desk.locator("#db-outage").inner_text()
        desk.screenshot(path=str(tmp / f"desk-database-unreachable-{size}.png"))

    time.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
    assert time.monotonic() - stopped >= OUTAGE
    assert not _live(server, event.id).database_reachable  # still down: a real outage
    postgres.resume()

    def caught_up() -> bool:
        view = _live(server, event.id)
        return view.database_reachable and view.writes_waiting == 0

    wait_until(caught_up, 3 * MAX_BACKOFF, "the journal written", lambda: server.log()[-3000:], 0.5)

    # Nobody was dropped: each caller stayed its time and hung up itself (sipp's verdict).
    for dialing in (*before, during):
        result = dialing.result(timeout=OUTAGE + 90)
        assert result.ok, result.report
    server.wait_for(lambda: _live(server, event.id).writes_waiting == 0, 15, 0.5)
    server.wait_for(lambda: not server.participants(event.id), timeout=15)

    entries = CallLog(server.database).entries(event.id)
    keys = Counter(entry_key(e) for e in entries)
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    kinds = Counter(e.kind for e in entries)
    assert kinds[LogKind.JOIN] == 3 and kinds[LogKind.LEAVE] == 3, kinds
    assert kinds[LogKind.QUEUE] == 1, kinds  # the *1, once
    assert kinds[LogKind.START] == 1, kinds
    attendance = CallLog(server.database).attendance(event.id)
    assert len(attendance) == 3
    assert all(a.left_at is not None for a in attendance), attendance
    assert all(a.reason == "bye" for a in attendance), attendance  # each hung up itself
    # The newcomer's join was made during the outage and written after it.
    newcomer = max(attendance, key=lambda a: a.joined_at)
    queued = next(e for e in entries if e.kind is LogKind.QUEUE)
    assert queued.participant_id == newcomer.participant_id
    log = server.log()
    assert "the database is unreachable" in log
    assert "the database answers again" in log
