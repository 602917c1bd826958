"""A real `callbridge serve` process for the telephony tests, and events to call into."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.events.schema import EventFile, EventRecord
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.store.users import UserStore
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.wait import wait_until

DID = "+19135550123"  # the dial-in number the tests call


def event_spec(starts_in: timedelta = timedelta(minutes=5), **event: Any) -> EventFile:
    """Northwind's third-quarter call on the tests' number, ``starts_in`` from now."""
    start = datetime.now(UTC) + starts_in
    spec = {
        "company": {
            "name": "Northwind Biologics, Inc.",
            "ticker": "NWBX",
            "exchange": "Nasdaq",
            "city": "CAMBRIDGE, Mass.",
            "about": "Northwind Biologics develops targeted biologic therapies.",
        },
        "event": {
            "title": "Third Quarter Fiscal Year 2026 Financial Results",
            "period": "the three-month period ended September 30, 2026",
            "starts_at": start.replace(tzinfo=None, microsecond=0),
            "timezone": "UTC",
            "duration_minutes": 60,
            "replay_until": (start + timedelta(days=7)).date(),
            "dial_in": [{"label": "International", "number": DID}],
            **event,
        },
    }
    return EventFile.model_validate(spec)


def register_for_webcast(client: httpx.Client, event_id: int, name: str, firm: str = "") -> str:
    """Register on the event's webcast page as a browser does (its CSRF token, its form).

    ``client`` keeps the listener's cookie; returns the cookie's value.
    """
    page = client.get(f"/events/{event_id}/webcast").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    answer = client.post(
        f"/events/{event_id}/webcast/register",
        data={"csrf_token": match.group(1), "name": name, "firm": firm, "email": "ir@example.com"},
    )
    assert answer.status_code == 303, answer.text[:500]
    value = client.cookies.get(f"cb_wc_{event_id}")
    assert value
    return value


@dataclass
class RunningServer:
    http_url: str
    sip_port: int
    database: Database
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    # serve --metrics-listen: /metrics and /healthz (web.metrics); 0 when not served.
    metrics_port: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def http_port(self) -> int:
        return int(self.http_url.rsplit(":", 1)[1])

    @property
    def sip_target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def create_event(
        self, starts_in: timedelta = timedelta(minutes=5), **event: Any
    ) -> EventRecord:
        return EventStore(self.database).create(event_spec(starts_in, **event))

    def api(self, method: str, path: str, timeout: float = 10, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(
            method, self.http_url + path, headers=headers, timeout=timeout, **kwargs
        )

    def stats(self) -> dict[str, Any]:
        """The media plane's counters (``/api/bridge/stats``): refusals, tick lateness, ..."""
        response = self.api("GET", "/api/bridge/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def participants(self, event_id: int, include_left: bool = False) -> list[dict[str, Any]]:
        query = "?include_left=true" if include_left else ""
        response = self.api("GET", f"/api/events/{event_id}/participants{query}")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def wait_for(self, predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
        return wait_until(
            predicate, timeout, "; server log:", lambda: "\n" + self.log()[-3000:], interval
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@contextlib.contextmanager
def start_server(
    tmp: Path,
    *extra: str,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    live_captions: bool = False,
    db_url: str | None = None,
    transcripts: bool = False,
) -> Iterator[RunningServer]:
    """`callbridge serve` on free ports with its own SQLite file; ``extra`` goes to serve.

    ``prefix`` runs it under another command (the benches' ``taskset -c 0``);
    ``env`` adds to its environment. Live captions (a speech engine per live
    call) are off unless asked for: the tests that measure them ask. So is the
    transcript after each call (an engine loaded per call: about 3 s of CPU
    each, in every test that ends a call): the tests of transcripts ask.
    ``db_url`` names another database (a PostgreSQL the test started) for the
    SQLite file.
    """
    database = Database(db_url or f"sqlite:///{tmp / 'callbridge.sqlite3'}")
    database.upgrade()
    users = UserStore(database)
    users.add("operator", "correct horse battery")
    token = users.issue_token("operator")
    http_port, sip_port, metrics_port = free_port(), free_port(), free_port()
    rtp_low = 30000 + (os.getpid() % 100) * 200
    log_path = tmp / "server.log"
    process = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "callbridge",
            "--db",
            database.url,
            "serve",
            "--port",
            str(http_port),
            "--sip-port",
            str(sip_port),
            "--data-dir",
            str(tmp / "var"),
            "--rtp-ports",
            f"{rtp_low}-{rtp_low + 199}",
            "--media-timeout",
            "8",
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
            *([] if live_captions else ["--no-live-captions"]),
            *([] if transcripts else ["--no-transcripts"]),
            *extra,
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "CALLBRIDGE_SECRET_KEY": "k" * 40, **(env or {})},
    )
    running = RunningServer(
        f"http://127.0.0.1:{http_port}",
        sip_port,
        database,
        token,
        process,
        log_path,
        tmp / "var",
        metrics_port,
    )
    try:
        # Two processes start side by side; on a loaded 2-core machine that can take a while.
        running.wait_for(lambda: _up(running), timeout=120)
        yield running
    finally:
        stop_tree(process)
        database.dispose()


def _up(server: RunningServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"the server exited:\n{server.log()}")
    try:
        return httpx.get(server.http_url + "/events", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (scripts/install-system installs it)")
        pytest.skip(f"{tool} is not installed")
