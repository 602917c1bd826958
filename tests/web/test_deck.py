"""Deck uploads against a real web process: bombs get a 4xx within seconds, its memory stays put.

The web app runs under uvicorn in a process of its own, as ``callbridge serve``
runs it, so that its peak resident memory (``VmHWM`` in ``/proc``, reset
through ``clear_refs`` before each upload) is the web process's alone; the
renderer is a child of it and is not counted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.store.db import Database
from callbridge.store.users import UserStore
from tests.conftest import example_data
from tests.slides.pdfs import concatenation_bomb, pages, pdf, stream, write
from tests.support.ports import free_port
from tests.support.procs import process_tree, stop_tree
from tests.support.wait import wait_until
from tests.web.conftest import OPERATOR, PASSWORD

SERVE = """
import sys
from pathlib import Path
import uvicorn
from callbridge.config import Settings
from callbridge.web.app import create_app
db_url, data_dir, port = sys.argv[1:]
settings = Settings(db_url=db_url, data_dir=Path(data_dir), secret_key="deck-test-" + "k" * 40)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(port), log_level="warning")
"""

# What the web process may grow by during one upload: the upload read into
# memory (a few KB here) and the request's handling. Rendering in it took 1.7 GB.
RSS_GROWTH_LIMIT_MIB = 64
KEPT = pdf(2)


@dataclass
class WebProcess:
    url: str
    process: subprocess.Popen[bytes]
    token: str
    log_path: Path

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def status_kib(self, field: str) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert found, status
        return int(found.group(1))

    def upload(self, event_id: int, name: str, data: bytes) -> tuple[httpx.Response, float, int]:
        """Upload a deck: the answer, how long it took, and how far the web process's peak
        resident memory rose above where it stood (KiB)."""
        before = self.status_kib("VmRSS")
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        started = time.monotonic()
        answer = self.api(
            "POST", f"/api/events/{event_id}/deck", files={"deck": (name, data, "application/pdf")}
        )
        elapsed = time.monotonic() - started
        return answer, elapsed, self.status_kib("VmHWM") - before


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    tmp = tmp_path_factory.mktemp("deck-web")
    database = Database(f"sqlite:///{tmp / 'callbridge.sqlite3'}")
    database.upgrade()
    users = UserStore(database)
    users.add(OPERATOR, PASSWORD)
    token = users.issue_token(OPERATOR)
    database.dispose()
    port = free_port()
    log_path = tmp / "web.log"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, database.url, str(tmp / "var"), str(port)],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    running = WebProcess(f"http://127.0.0.1:{port}", process, token, log_path)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited:\n{log_path.read_text()}")
        try:
            return httpx.get(running.url + "/events", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "the web process to listen", lambda: log_path.read_text()[-2000:])
        yield running
    finally:
        stop_tree(process)


@pytest.fixture
def event_id(web: WebProcess) -> int:
    """A scheduled event with a deck of two slides already in place."""
    body = json.loads(json.dumps(example_data(), default=str))
    for key in ("passcode", "speaker_passcode", "replay_passcode"):
        body["event"].pop(key)  # generated, so that each test's event is its own
    created = web.api("POST", "/api/events", json=body)
    assert created.status_code == 201, created.text
    number: int = created.json()["id"]
    answer, _, _ = web.upload(number, "kept.pdf", KEPT)
    assert answer.status_code == 201, answer.text
    return number


def assert_kept(web: WebProcess, event_id: int) -> None:
    """The deck uploaded first is still the event's, whole."""
    info = web.api("GET", f"/api/events/{event_id}/deck")
    assert info.status_code == 200 and info.json()["filename"] == "kept.pdf", info.text
    assert info.json()["pages"] == 2
    assert web.api("GET", f"/events/{event_id}/deck.pdf").content == KEPT


def refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 422, (answer.status_code, answer.text)
    message: str = answer.json()["detail"][0]["msg"]
    return message


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "the 1 × 14,400 pt page",
            pages(b"/MediaBox [0 0 1 14400]"),
            "page 1 is 1 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a side",
        ),
        (
            "the 100 × 14,400 pt page",
            pages(b"/MediaBox [0 0 100 14400]"),
            "page 1 is 100 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a side",
        ),
        (
            "150 pages of 100 × 14,400 pt",
            pages(*[b"/MediaBox [0 0 100 14400]"] * 150),
            "page 1 is 100 × 14,400 pt; a slide may be at most 3,600 pt (50 in) on a side",
        ),
        (
            "a page 800 × 3,000 pt, 1,280 × 4,800 px",
            pages(b"/MediaBox [0 0 960 540]", b"/MediaBox [0 0 800 3000]"),
            "page 2 is 800 × 3,000 pt and would be 1,280 × 4,800 px; a slide may be at most "
            "3,840 px tall",
        ),
        (
            "a content stream bomb",
            concatenation_bomb(),
            "page 1 could not be rendered within 1 GiB of memory, the most a deck may take",
        ),
    ],
)
def test_an_oversized_page_or_a_bomb_is_a_422_within_seconds_and_the_web_app_stays_small(
    web: WebProcess, event_id: int, name: str, data: bytes, message: str
) -> None:
    answer, elapsed, growth_kib = web.upload(event_id, "bomb.pdf", data)
    assert refusal(answer).startswith(message)
    bomb = "could not be rendered" in message
    print(
        f"{name} ({len(data):,} bytes): {answer.status_code} in {elapsed:.2f} s; "
        f"the web process's peak RSS rose {growth_kib:,} KiB"
    )
    # Seconds, even on a loaded host (it was minutes, and 1.7 GB in this process).
    assert elapsed < (60 if bomb else 20)
    assert growth_kib < RSS_GROWTH_LIMIT_MIB * 1024
    assert_kept(web, event_id)
    assert web.process.poll() is None


def test_a_normal_deck_still_renders_and_pdfium_never_loads_in_the_web_process(
    web: WebProcess, event_id: int
) -> None:
    answer, elapsed, growth_kib = web.upload(event_id, "Q3 deck.pdf", pdf(40))
    assert answer.status_code == 201, answer.text
    assert answer.json()["pages"] == 40
    print(
        f"a 40-page deck: 201 in {elapsed:.2f} s (rendering {answer.json()['render_seconds']} s); "
        f"the web process's peak RSS rose {growth_kib:,} KiB"
    )
    assert growth_kib < RSS_GROWTH_LIMIT_MIB * 1024
    maps = Path(f"/proc/{web.process.pid}/maps").read_text()
    assert "pdfium" not in maps  # the renderer is the only process that maps it
    info = web.api("GET", f"/api/events/{event_id}/deck").json()
    assert info["filename"] == "Q3 deck.pdf" and info["pages"] == 40


def test_one_deck_renders_at_a_time_one_more_waits_and_a_third_is_told_to_retry(
    web: WebProcess, event_id: int
) -> None:
    answers: list[httpx.Response] = []

    def upload() -> None:
        answers.append(web.upload(event_id, "bomb.pdf", concatenation_bomb())[0])

    first = threading.Thread(target=upload)
    first.start()
    # The first upload's renderer is running: a child of the web process.
    wait_until(lambda: len(process_tree(web.process.pid)) > 1, 30, "the renderer to start")
    others = [threading.Thread(target=upload) for _ in range(2)]
    for thread in others:
        thread.start()
    for thread in (first, *others):
        thread.join(timeout=120)
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [422, 422, 503], [answer.text for answer in answers]
    busy = next(answer for answer in answers if answer.status_code == 503)
    assert busy.headers["Retry-After"] == "30" and "another deck" in busy.text
    assert_kept(web, event_id)


def test_a_large_upload_is_held_once_and_one_over_50_mb_is_refused_unread(
    web: WebProcess, event_id: int
) -> None:
    # Two slides and 40 MB that nothing refers to (as an export with unused pictures).
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540] >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540] >>",
        stream(b"", bytes(40 << 20)),
    ]
    data = write(objects)
    answer, elapsed, growth_kib = web.upload(event_id, "large.pdf", data)
    assert answer.status_code == 201, answer.text
    print(
        f"a {len(data) / 2**20:.0f} MiB deck: 201 in {elapsed:.2f} s; "
        f"the web process's peak RSS rose {growth_kib / 1024:.1f} MiB"
    )
    assert growth_kib < (len(data) >> 10) + RSS_GROWTH_LIMIT_MIB * 1024 // 4
    answer, elapsed, growth_kib = web.upload(event_id, "huge.pdf", data + bytes(11 << 20))
    assert answer.status_code == 413 and "over 50 MB" in answer.text
    assert growth_kib < RSS_GROWTH_LIMIT_MIB * 1024
    info = web.api("GET", f"/api/events/{event_id}/deck").json()
    assert info["filename"] == "large.pdf"
