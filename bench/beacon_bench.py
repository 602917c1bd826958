#!/usr/bin/env python3
"""Beacon benchmark: what N web listeners' attendance beacons cost the origin.

Every listener's page POSTs ``/api/events/{id}/webcast/beacon`` once per
``beacon_interval`` (read from the webcast's status, 15 s) while it plays.
Beacons are POSTs, so a cache tier passes every one to the origin: they are
the origin's one cost that grows with the audience. This bench runs
``callbridge serve`` pinned to one core (taskset), starts a live call on a
webcast that needs no registration, and from the other core gives each of N
simulated listeners its own signed browser id the way a browser gets one: from
its first beacon (the audio starts), keeping its ``Set-Cookie``. The bench
plays the cache tier (``--trusted-proxy 127.0.0.1/32``): each listener has
an address of its own in ``X-Forwarded-For``, as behind a real tier, since
ids are handed out at a bounded rate per address. Then the listeners
beacon at the page's interval, evenly spread (N / interval beacons a
second), over a pool of keep-alive connections, as a cache tier's backend
connections would carry them. After one interval of warm-up (every
listener's first beacon, which finds or makes its row), the web process's
CPU is measured over ``--seconds``.

At the end the server is stopped (SIGTERM: the web app's shutdown flushes
what it holds) and every listener's time heard is read from the database and
compared with what its counted beacons should have earned (the gaps between
its 204s, rounded, as the server counts them): the sum must be within one
second per counted beacon.

    .venv/bin/python bench/beacon_bench.py                             # 1,000 / 5,000 / 10,000
    .venv/bin/python bench/beacon_bench.py --listeners 10000 --seconds 45
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from hashlib import sha256
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import cpu_seconds, process_tree  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

from callbridge.store.audience import MAX_CREDIT, MIN_BEACON_GAP  # noqa: E402

SET_COOKIE = re.compile(rb"^set-cookie:\s*([^=;\r\n]+)=([^;\r\n]*)", re.IGNORECASE | re.MULTILINE)
BODY = b'{"mode":"live"}'


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its status, headers and body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers.split(b" ", 2)[1])
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", headers, re.IGNORECASE)
        if match and int(match.group(1)):
            await self.reader.readexactly(int(match.group(1)))
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Listener:
    cookies: dict[str, str]  # what the first beacon set: its browser id
    address: str  # its own, as the cache tier names it in X-Forwarded-For
    counted: list[float] = field(default_factory=list)  # when each 204 came back
    refused: int = 0

    @property
    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    @property
    def token(self) -> str:
        (browser,) = (v for k, v in self.cookies.items() if k.startswith("cb_wc_"))
        return browser.rpartition(".")[0]

    def earned(self) -> tuple[int, int]:
        """Seconds its counted beacons earn as the server counts them, and how many credited."""
        total = credited = 0
        for before, after in zip(self.counted, self.counted[1:], strict=False):
            gap = after - before
            if gap <= MAX_CREDIT:
                total += round(gap)
                credited += 1
        return total, credited


def address_of(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def open_pages(
    port: int, event_id: int, count: int, pool: int, first: int = 0
) -> list[Listener]:
    """``count`` browser ids, each from a listener's first beacon (its Set-Cookie)."""
    listeners: list[Listener] = []
    taken = first

    async def worker() -> None:
        nonlocal taken
        conn = Connection(port)
        while taken < first + count:
            address = address_of(taken)
            taken += 1
            head = (
                f"POST /api/events/{event_id}/webcast/beacon HTTP/1.1\r\nHost: bench\r\n"
                f"X-Forwarded-For: {address}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(BODY)}\r\n\r\n"
            ).encode()
            status, headers = await conn.request(head, BODY)
            cookies = {m[1].decode(): m[2].decode() for m in SET_COOKIE.finditer(headers)}
            if status != 204 or not any(name.startswith("cb_wc_") for name in cookies):
                raise RuntimeError(f"the first beacon answered {status} without a browser id")
            listener = Listener(cookies, address)
            listener.counted.append(time.monotonic())
            listeners.append(listener)
        conn.close()

    await asyncio.gather(*(worker() for _ in range(pool)))
    # The next beacon must not come sooner than the server counts one.
    await asyncio.sleep(MIN_BEACON_GAP)
    return listeners


async def beacon_for(
    listeners: list[Listener], port: int, event_id: int, interval: float, seconds: float, pool: int
) -> list[float]:
    """Each listener beacons once per ``interval`` for ``seconds``, spread evenly.

    Returns how late each beacon was sent (the pool waits for each answer).
    """
    path = f"POST /api/events/{event_id}/webcast/beacon HTTP/1.1\r\nHost: bench\r\n"
    heads = [
        (
            f"{path}Cookie: {listener.cookie}\r\nX-Forwarded-For: {listener.address}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode()
        for listener in listeners
    ]
    due: asyncio.Queue[tuple[float, int]] = asyncio.Queue()
    late: list[float] = []
    step = interval / len(listeners)

    async def schedule() -> None:
        start, k = time.monotonic(), 0
        while True:
            at = start + k * step
            if k * step >= seconds - step / 2:
                break
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait((at, k % len(listeners)))
            k += 1
        for _ in range(pool):
            due.put_nowait((0.0, -1))

    async def worker() -> None:
        conn = Connection(port)
        while True:
            at, index = await due.get()
            if index < 0:
                break
            late.append(time.monotonic() - at)
            status, _ = await conn.request(heads[index], BODY)
            listener = listeners[index]
            if status == 204:
                listener.counted.append(time.monotonic())
            else:
                listener.refused += 1
        conn.close()

    await asyncio.gather(schedule(), *(worker() for _ in range(pool)))
    return late


def web_process(server: int, port: int) -> int:
    """The pid in ``callbridge serve``'s tree that holds the HTTP listening socket."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(fields[9])
    for pid in process_tree(server):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        sockets = {f"socket:[{inode}]" for inode in inodes}
        if pid != server and sockets.intersection(links):
            return pid
    raise RuntimeError("no process of the server listens on the HTTP port")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, after warm-up")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive pool")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_core})

    tmp = Path(tempfile.mkdtemp(prefix="beacon-bench-"))
    everyone: list[Listener] = []
    with start_server(
        tmp, "--trusted-proxy", "127.0.0.1/32", prefix=("taskset", "-c", str(args.server_core))
    ) as server:
        event = server.create_event(
            timedelta(minutes=-1),
            title="Beacon benchmark",
            period="the quarter",
            registration="off",
        )
        url, http_port = server.http_url, server.http_port
        started = server.api("POST", f"/api/events/{event.id}/start")
        if started.status_code != 200:
            print("could not start the call:", started.text)
            return 1
        status = httpx.get(f"{url}/api/events/{event.id}/webcast", timeout=5).json()
        interval = float(status["beacon_interval"])
        web = web_process(server.process.pid, http_port)
        print(
            f"server on core {args.server_core} (web process {web}), load on core "
            f"{args.client_core}; beacons every {interval:.0f} s, {args.connections} connections"
        )
        print(f"measured {args.seconds:.0f} s after one interval of warm-up")
        idle = cpu_seconds(web)
        time.sleep(5)
        user, system = (now - then for now, then in zip(cpu_seconds(web), idle, strict=True))
        print(f"web process idle (the call live, no listener): user {20 * user:.1f}% ", end="")
        print(f"sys {20 * system:.1f}%\n")
        for count in args.listeners:
            clock = time.monotonic()
            listeners = asyncio.run(
                open_pages(http_port, event.id, count, args.connections, len(everyone))
            )
            pages_s = time.monotonic() - clock
            everyone += listeners
            # Warm-up: every listener's first beacon (it finds or makes its row).
            before, wall = sum(cpu_seconds(web)), time.monotonic()
            asyncio.run(
                beacon_for(listeners, http_port, event.id, interval, interval, args.connections)
            )
            warm_cpu = 100 * (sum(cpu_seconds(web)) - before) / (time.monotonic() - wall)
            split, wall = cpu_seconds(web), time.monotonic()
            before = sum(split)
            late = asyncio.run(
                beacon_for(
                    listeners,
                    http_port,
                    event.id,
                    interval,
                    args.seconds,
                    args.connections,
                )
            )
            elapsed = time.monotonic() - wall
            now_split = cpu_seconds(web)
            cpu = 100 * (sum(now_split) - before) / elapsed
            sys_cpu = 100 * (now_split[1] - split[1]) / elapsed
            late.sort()
            rate = len(late) / elapsed
            refused = sum(listener.refused for listener in listeners)
            print(
                f"{count:6d} listeners: {rate:6.0f} beacons/s, web process CPU {cpu:5.1f}% "
                f"of a core (sys {sys_cpu:.1f}%; {10_000 * cpu / max(rate, 1e-9):.0f} µs a beacon; "
                f"first round {warm_cpu:.1f}%), late p99 "
                f"{1000 * late[int(0.99 * (len(late) - 1))]:.0f} ms, refused {refused}, "
                f"pages {pages_s:.0f} s"
            )
        # What a crash now would leave: the database as the server last wrote it.
        time.sleep(interval / 3)
        before_stop = _heard(tmp / "callbridge.sqlite3", event.id)
        server.process.terminate()
        server.process.wait(timeout=30)
        after = _heard(tmp / "callbridge.sqlite3", event.id)
        expected = credited = missing = worst = 0
        for listener in everyone:
            seconds, beacons = listener.earned()
            expected += seconds
            credited += beacons
            got = after.get(sha256(listener.token.encode()).hexdigest())
            if got is None:
                missing += 1
            else:
                worst = max(worst, abs(got - seconds))
        total = sum(after.values())
        print(
            f"\ntime heard: {len(after)} rows for {len(everyone)} listeners ({missing} missing); "
            f"database {total} s, earned {expected} s over {credited} credited beacons "
            f"(|diff| {abs(total - expected)} s, bound {credited} s); worst listener off by "
            f"{worst} s; before the shutdown flush the database held {sum(before_stop.values())} s"
        )
        ok = missing == 0 and abs(total - expected) <= credited
        print("every listener's time heard is in the database" if ok else "TIME HEARD LOST")
        print(
            "\nreproduce: .venv/bin/python bench/beacon_bench.py --listeners "
            + " ".join(str(c) for c in args.listeners)
            + f" --seconds {args.seconds:.0f} --connections {args.connections}"
        )
        return 0 if ok else 1


def _heard(path: Path, event_id: int) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT token_sha256, live_seconds FROM webcast_listener WHERE event_id = ?",
            (event_id,),
        ).fetchall()
    return {digest: seconds for digest, seconds in rows}


if __name__ == "__main__":
    raise SystemExit(main())
