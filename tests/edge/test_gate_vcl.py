"""What the VCL's gate sends the origin, and what it keeps: real Varnish, a stand-in origin.

The real origin always decides on the value the tier sends and names it, so
it cannot show that the tier refuses to keep an answer decided on another
value; a small origin here answers as a wrong one would, and records every
request Varnish makes of it.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from callbridge.edge.node import wait_listening
from callbridge.edge.varnish import CacheNode, default_workdir, varnishd_command, write_files
from tests.edge.test_gate import ask
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.telephony.conftest import need

VALUE = "wl_" + "A" * 32 + "." + "0123456789abcdef" * 2


class StandIn(BaseHTTPRequestHandler):
    """Answers /access 204, naming the value it was asked for, or another when told to."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    decide_on: ClassVar[str | None] = None  # None: the value asked for

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        StandIn.seen.append((self.path, headers))
        self.send_response(204 if self.path.endswith("/access") else 200)
        if self.path.endswith("/access"):
            asked = headers.get("x-cb-gate-cookie")
            decided = asked if StandIn.decide_on is None else StandIn.decide_on
            if decided is not None:
                self.send_header("X-CB-Gate-Decided", decided)
        self.send_header("Surrogate-Control", "max-age=300")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    need("varnishd")
    tmp = tmp_path_factory.mktemp("gate-vcl")
    origin_port, port = free_port(), free_port()
    origin = ThreadingHTTPServer(("127.0.0.1", origin_port), StandIn)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    # As root, Varnish's own user must read the files: not in pytest's private folder.
    workdir = default_workdir(("127.0.0.1", port), tmp / "node")
    node = CacheNode(("127.0.0.1", port), ("127.0.0.1", origin_port), workdir)
    write_files(node)
    said = tmp / "varnishd.log"
    with said.open("wb") as log:
        varnish = subprocess.Popen(varnishd_command(node), stdout=log, stderr=subprocess.STDOUT)
    try:
        started = wait_listening(("127.0.0.1", port), timeout=60)
        assert started, f"varnishd did not start ({varnish.poll()}): {said.read_text()[-2000:]}"
        yield port
    finally:
        stop_tree(varnish)
        origin.shutdown()
        origin.server_close()
        shutil.rmtree(workdir, ignore_errors=True)


def _asked(path: str) -> list[dict[str, str]]:
    return [headers for seen, headers in StandIn.seen if seen == path]


def test_the_origin_gets_the_tiers_reading_and_no_cookie(tier: int) -> None:
    StandIn.seen.clear()
    # The client's own X-CB-Gate-Cookie is never passed on: the tier's reading is.
    forged = ["X-CB-Gate-Cookie: forged"]
    cookies = [f"a=1; cb_wc_7={VALUE}", "x=2"]
    assert ask(tier, "/webcast/7/live/index.m3u8", cookies, more=forged) == 200
    [access] = _asked("/webcast/7/access")
    [media] = _asked("/webcast/7/live/index.m3u8")
    for headers in (access, media):
        assert headers["x-cb-gate-cookie"] == VALUE
        assert "cookie" not in headers
    # No gate cookie: the value "" goes, as a header, so the origin knows it is the tier's.
    assert ask(tier, "/webcast/9/replay.m4a", ["a=1"], more=forged) == 200
    [access] = _asked("/webcast/9/access")
    assert access["x-cb-gate-cookie"] == ""
    # Pages pass with their Cookie and without the gate's header, whatever the client sent.
    assert ask(tier, "/events/7/webcast", ["a=1"], more=forged) == 200
    [page] = _asked("/events/7/webcast")
    assert page["cookie"] == "a=1" and "x-cb-gate-cookie" not in page


def test_an_access_answer_decided_on_another_value_is_never_kept(tier: int) -> None:
    StandIn.seen.clear()
    StandIn.decide_on = VALUE  # as if the origin had read the Cookie itself
    try:
        for _ in range(2):
            assert ask(tier, "/webcast/8/live/index.m3u8", [f"cb_wc_8 ={VALUE}"]) == 403
            assert ask(tier, "/webcast/8/live/index.m3u8", []) == 503
    finally:
        StandIn.decide_on = None
    # Asked again each time: the wrong answer was not kept, and no media was fetched.
    assert len(_asked("/webcast/8/access")) == 2
    assert not _asked("/webcast/8/live/index.m3u8")
    assert ask(tier, "/webcast/8/live/index.m3u8", []) == 200  # a right answer is kept
    assert ask(tier, "/webcast/8/live/index.m3u8", []) == 200
    assert len(_asked("/webcast/8/access")) == 3
