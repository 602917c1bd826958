"""Fixtures for the webcast tests: a live webcast fed in real time, a tiny HTTP server, Chromium."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from callbridge.webcast.live import LiveWebcast, media_position
from callbridge.webcast.playlist import (
    Blocking,
    BlockingRequestError,
    blocking_decision,
    parse_blocking_query,
)
from tests.support.chromium import launch

VENDOR = Path(__file__).resolve().parents[2] / "src/callbridge/web/static/vendor"


def tone(
    index: int, start: int, hz: float = 1000.0, amplitude: int = 10_000, rate: int = SAMPLE_RATE
) -> Pcm:
    """Frame ``index`` of a tone that starts at frame ``start`` (silence before), at
    ``rate``: the mix's by default, a recording's 8 kHz if asked."""
    size = rate * FRAME_SAMPLES // SAMPLE_RATE
    if index < start:
        return np.zeros(size, dtype=np.int16)
    t = np.arange(size) + (index - start) * size
    return (np.sin(2 * np.pi * hz * t / rate) * amplitude).astype(np.int16)


class RealTimeFeed:
    """Pushes a tone into a webcast every 20 ms against absolute deadlines, on a thread."""

    def __init__(self, webcast: LiveWebcast) -> None:
        self.webcast = webcast
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stop.is_set():
            self.webcast.push(n, tone(n, 0, hz=440 + 220 * ((n // 50) % 2)))
            n += 1
            delay = start + n * 0.020 - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def _handler(directory: Path, webcast: LiveWebcast, pages: dict[str, bytes]) -> type[Any]:
    class Handler(SimpleHTTPRequestHandler):
        """Static files, plus the two waits an LL-HLS origin owes: blocking reload and hints."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            name = url.path.lstrip("/")
            if name in pages:
                body = pages[name]
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            deadline = time.monotonic() + 6
            if name == "index.m3u8":
                # Before the first segment there is no playlist: hold the request.
                query = parse_qs(url.query)
                try:
                    msn, part = parse_blocking_query(
                        query.get("_HLS_msn", [None])[0], query.get("_HLS_part", [None])[0]
                    )
                    while time.monotonic() < deadline:
                        snap = webcast.snapshot()
                        if snap and blocking_decision(snap.playlist, msn, part) is Blocking.READY:
                            break
                        time.sleep(0.01)
                except BlockingRequestError:
                    self.send_error(HTTPStatus.BAD_REQUEST)
                    return
            elif media_position(name) is not None:
                while not (directory / name).exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            # Playlists change within a second: no If-Modified-Since 304s on mtime.
            del self.headers["If-Modified-Since"]
            super().do_GET()

    return Handler


class Origin:
    def __init__(self, directory: Path, webcast: LiveWebcast) -> None:
        self.pages: dict[str, bytes] = {}
        handler = _handler(directory, webcast, self.pages)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def live_origin(tmp_path: Path) -> Iterator[tuple[Origin, LiveWebcast]]:
    """A webcast fed in real time, served with blocking reload from a thread."""
    webcast = LiveWebcast(tmp_path / "live")
    for vendored in VENDOR.glob("*"):
        shutil.copy(vendored, tmp_path / "live" / vendored.name)
    feed = RealTimeFeed(webcast)
    origin = Origin(tmp_path / "live", webcast)
    origin.thread.start()
    feed.thread.start()
    try:
        yield origin, webcast
    finally:
        feed.stop.set()
        feed.thread.join()
        webcast.close()
        origin.server.shutdown()
        origin.server.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch() as browser:
        yield browser
