"""A cache node (real Varnish) in front of two origins: the active one and its hot standby.

`callbridge cache --origin A --origin B` probes both on /healthz and sends
everything to the first healthy one. The active origin is stopped: not one
request through the cache fails (the dying origin's are tried again on the
standby at once), and within a couple of probes the standby answers alone.
The origins here are plain HTTP servers that say who they are, so that the
test reads which one answered.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.telephony.conftest import need

pytestmark = pytest.mark.serial


class _Origin:
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        name = self.name

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok\n" if self.path == "/healthz" else name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origins() -> Iterator[list[_Origin]]:
    two = [_Origin("a", free_port()), _Origin("b", free_port())]
    for origin in two:
        origin.start()
    yield two
    for origin in two:
        if origin.server is not None:
            origin.server.server_close()


def test_the_cache_fails_over_to_the_standby_without_a_failed_request(
    origins: list[_Origin], tmp_path: Path
) -> None:
    need("varnishd")
    port = free_port()
    log = tmp_path / "cache.log"
    cache = subprocess.Popen(
        [sys.executable, "-m", "callbridge", "cache",
         *(f"--origin=127.0.0.1:{o.port}" for o in origins),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/who"
    try:

        def who() -> str:
            answer = httpx.get(url, timeout=5)
            assert answer.status_code == 200, (answer.status_code, answer.text)
            return answer.text

        deadline = time.monotonic() + 60
        while True:
            assert cache.poll() is None, log.read_text()[-3000:]
            try:
                if who() == "a":
                    break
            except (httpx.HTTPError, AssertionError):
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert {who() for _ in range(5)} == {"a"}  # the first healthy origin: the active one

        origins[0].stop()
        stopped = time.monotonic()
        answers = []
        while time.monotonic() - stopped < 3.0:
            asked = time.monotonic()
            name = who()
            answers.append((time.monotonic() - asked, name))  # never a failure
            time.sleep(0.05)
        assert {name for _, name in answers} == {"b"}
        # The retries' cost: the slowest answer while the probe had yet to notice.
        slowest = max(took for took, _ in answers)
        print(
            f"\nCACHE FAILOVER: {len(answers)} requests in the 3 s after the stop, all answered"
            f" by the standby; the slowest took {slowest * 1000:.0f} ms"
        )
    finally:
        cache.terminate()
        try:
            cache.wait(15)
        except subprocess.TimeoutExpired:
            cache.kill()
