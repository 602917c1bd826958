"""The C LL-HLS load generator against a real live webcast of `callbridge serve`.

A handful of listeners for a few seconds: each must receive parts at the
stream's own rate, every part in turn, without a stall or an error, and the
figures the benchmarks read (requests, latencies, CPU) must be there.

callbridge answers with Content-Length; a cache in front may answer chunked,
close a connection after a response, or split a head across reads. A small
LL-HLS origin on the standard library's HTTP server does all of that, with
other file names, so that the generator's framing and its hint arithmetic
are checked on what callbridge never sends.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import ThreadingUnixStreamServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from bench.llhls import build, run

from tests.telephony.conftest import RunningServer, need, start_server

# Timing-sensitive: runs alone, after the parallel part of the suite (scripts/test).
pytestmark = pytest.mark.serial

CLIENTS = 5
SECONDS = 5.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """A server with a live call (silence: serving costs the same) and its playlist path."""
    with start_server(tmp_path_factory.mktemp("llhls")) as server:
        event = server.create_event(timedelta(minutes=-1), registration="off")
        server.api("POST", f"/api/events/{event.id}/start").raise_for_status()
        path = f"/webcast/{event.id}/live/index.m3u8"
        server.wait_for(lambda: httpx.get(server.http_url + path).status_code == 200, timeout=20)
        yield server, path


@pytest.fixture(autouse=True)
def gcc() -> None:
    need("gcc")  # the bench compiles the generator when it runs


def test_builds_once(tmp_path: Path) -> None:
    binary = build(into=tmp_path)
    built_at = binary.stat().st_mtime_ns
    assert build(into=tmp_path) == binary
    assert binary.stat().st_mtime_ns == built_at


def test_listeners_get_every_part_in_time(live: tuple[RunningServer, str]) -> None:
    server, path = live
    port = int(server.http_url.rsplit(":", 1)[1])
    started = time.monotonic()
    result = run("127.0.0.1", port, path, CLIENTS, SECONDS, ramp_s=0.5)
    assert time.monotonic() - started < SECONDS + 10

    assert (result.started, result.connected, result.clients_without_parts) == (CLIENTS, CLIENTS, 0)
    assert result.errors == {}, result.raw
    assert result.stalled_clients == 0 and result.stall_events == 0, result.raw
    assert result.parts_skipped == 0, result.raw
    assert 0.2 < result.part_target < 0.25  # 1024 AAC frames of 48 kHz, as packaged
    # Every client keeps up with the live edge: its own rate is the stream's.
    rate = result.stream_parts_per_s
    assert 0.9 * rate < result.client_parts_per_s_min <= result.client_parts_per_s_max < 1.1 * rate
    assert 0.85 * rate < result.parts_per_client_per_s < 1.15 * rate, result.raw
    # Two requests per part (the blocking reload and the part), all answered;
    # a part listed late (the origin slow for a moment) is fetched without a reload.
    assert result.requests >= 2 * result.parts - result.parts_late
    assert result.parts_late < result.parts / 4
    assert result.requests_per_s == pytest.approx(2 * rate * CLIENTS, rel=0.2)
    assert result.bytes > 100 * result.parts  # AAC parts, not empty answers
    # The blocking reload waits for the next part: about one part's time, not more.
    assert result.playlist_latency.count >= result.parts - result.parts_late
    assert 0 < result.playlist_latency.p50 < 2000 * result.part_target
    assert result.cycle_latency.max < 1000 * result.stall_bound_s
    assert result.cpu_user_s + result.cpu_system_s < 1.0


def test_refusals_count_by_status(live: tuple[RunningServer, str]) -> None:
    """A playlist that does not exist: every request answers 404, counted, retried, no parts."""
    server, _ = live
    port = int(server.http_url.rsplit(":", 1)[1])
    result = run("127.0.0.1", port, "/webcast/999/live/index.m3u8", 2, 1.0)
    assert result.parts == 0 and result.clients_without_parts == 2
    assert set(result.errors) == {"404"}
    # Retried after a delay (0.2 s), not in a tight loop.
    assert 4 <= result.errors["404"] <= 2 * 1.0 / 0.2 + 4


PART_S = 0.2
PARTS_PER_SEGMENT = 4


class OddOrigin(BaseHTTPRequestHandler):
    """A live stream of 0.2 s parts, four to a segment, from the clock; blocking reloads.

    Playlists go out chunked (with a chunk extension and a trailer) in small
    pieces, the head in two writes; every fifth part is answered with
    ``Connection: close``.
    """

    protocol_version = "HTTP/1.1"
    started = time.monotonic() - 2.05  # ten parts exist when the test starts
    answered = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    @classmethod
    def available(cls) -> int:
        """How many parts exist now."""
        return math.floor((time.monotonic() - cls.started) / PART_S)

    @classmethod
    def wait_for(cls, index: int) -> None:
        while cls.available() <= index:
            time.sleep(0.005)

    def send_head(self, lines: list[str]) -> None:
        head = ("HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()
        self.wfile.write(head[:20])
        self.wfile.flush()
        time.sleep(0.002)
        self.wfile.write(head[20:])

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/live/stream.m3u8":
            query = parse_qs(url.query)
            if "_HLS_msn" in query:
                msn, part = int(query["_HLS_msn"][0]), int(query["_HLS_part"][0])
                self.wait_for(msn * PARTS_PER_SEGMENT + part)
            self.send_playlist(self.playlist(self.available()))
        elif url.path.startswith("/live/p") and url.path.endswith(".mp4"):
            msn, part = (int(n) for n in url.path[7:-4].split("_"))
            self.wait_for(msn * PARTS_PER_SEGMENT + part)
            OddOrigin.answered += 1
            close = OddOrigin.answered % 5 == 0
            body = bytes(300)
            lines = [f"Content-Length: {len(body)}"] + (["Connection: close"] if close else [])
            self.send_head(lines)
            self.wfile.write(body)
            self.close_connection = close
        else:
            self.send_error(404)

    @staticmethod
    def playlist(parts: int) -> str:
        msn, part = divmod(parts, PARTS_PER_SEGMENT)
        first = max(0, msn - 2)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:1",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6",
            f"#EXT-X-PART-INF:PART-TARGET={PART_S}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        for segment in range(first, msn + 1):
            for index in range(PARTS_PER_SEGMENT if segment < msn else part):
                lines.append(f'#EXT-X-PART:DURATION={PART_S},URI="p{segment}_{index}.mp4"')
            if segment < msn:
                lines += [f"#EXTINF:{PART_S * PARTS_PER_SEGMENT},", f"s{segment}.mp4"]
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p{msn}_{part}.mp4"')
        return "\n".join(lines) + "\n"

    def send_playlist(self, text: str) -> None:
        body = text.encode()
        self.send_head(["Content-Type: application/x-mpegurl", "Transfer-Encoding: chunked"])
        for at in range(0, len(body), 100):
            piece = body[at : at + 100]
            self.wfile.write(f"{len(piece):x};piece=yes\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\nX-Trailer: ok\r\n\r\n")


@pytest.fixture
def odd_origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddOrigin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_chunked_playlists_split_heads_and_closes(odd_origin: int) -> None:
    result = run("127.0.0.1", odd_origin, "/live/stream.m3u8", 4, 3.0, ramp_s=0.2)
    assert result.errors == {}, result.raw
    assert result.part_target == pytest.approx(PART_S)
    assert result.clients_without_parts == 0 and result.parts_skipped == 0, result.raw
    assert result.stalled_clients == 0, result.raw
    assert 0.85 * 5 < result.client_parts_per_s_min <= result.client_parts_per_s_max < 1.15 * 5
    assert result.bytes == 300 * result.parts


def test_unix_socket(tmp_path: Path) -> None:
    """A cache may listen on a Unix socket (half the kernel's work per request of TCP)."""
    path = tmp_path / "cache.sock"
    server = ThreadingUnixStreamServer(str(path), OddOrigin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run(f"unix:{path}", 0, "/live/stream.m3u8", 2, 1.5, host_header="cache")
    finally:
        server.shutdown()
        server.server_close()
    assert result.errors == {} and result.clients_without_parts == 0, result.raw
    assert result.parts >= 2 * 5
