"""LL-HLS listeners for the tests: what hls.js does in low-latency mode, over raw HTTP/1.1.

Each listener holds one keep-alive connection, asks for the part that the
playlist's EXT-X-PRELOAD-HINT names with a blocking reload
(``_HLS_msn``/``_HLS_part``), then fetches that part, again and again, and
notes every part it got. ``python -m tests.support.llhls HOST PORT BASE N
SECONDS [COOKIE]`` runs a crowd and prints its result as JSON, so a test can
run one inside another network namespace (``ip netns exec``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"')
PART_TARGET = re.compile(r"#EXT-X-PART-INF:PART-TARGET=([0-9.]+)")


class Connection:
    """One keep-alive HTTP/1.1 connection: GET, read the head and a Content-Length body."""

    def __init__(self, host: str, port: int, cookie: str | None = None) -> None:
        self.host, self.port, self.cookie = host, port, cookie
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        cookie = f"Cookie: {self.cookie}\r\n" if self.cookie else ""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{cookie}\r\n".encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Listened:
    """What one listener got: the parts (msn, index), errors by status, its worst lag."""

    parts: list[tuple[int, int]] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    lag_s: float = 0.0
    cache_hits: int = 0


async def listen(
    host: str, port: int, base: str, seconds: float, cookie: str | None = None
) -> Listened:
    """One listener on the live playlist under ``base`` (``/webcast/<id>/live/``)."""
    got = Listened()
    connection = Connection(host, port, cookie)
    until = time.monotonic() + seconds
    try:
        status, _, body = await connection.get(base + "index.m3u8")
        text = body.decode()
        hint, target = HINT.search(text), PART_TARGET.search(text)
        if status != 200 or hint is None or target is None:
            got.errors[status] = got.errors.get(status, 0) + 1
            return got
        part_s = float(target.group(1))
        msn, index = int(hint.group(1)), int(hint.group(2))
        started = time.monotonic()
        while time.monotonic() < until:
            query = f"index.m3u8?_HLS_msn={msn}&_HLS_part={index}"
            status, _, body = await connection.get(base + query)
            if status == 200:
                status, headers, _ = await connection.get(f"{base}part{msn}.{index}.m4s")
                got.cache_hits += headers.get("x-cache") == "hit"
            if status != 200:
                got.errors[status] = got.errors.get(status, 0) + 1
                await asyncio.sleep(part_s)
                continue
            got.parts.append((msn, index))
            # Behind by more than the hold-back it started with: the player would stall.
            lag = (time.monotonic() - started) - len(got.parts) * part_s
            got.lag_s = max(got.lag_s, lag)
            hint = HINT.search(body.decode())
            if hint is None:
                break  # the playlist ended
            msn, index = int(hint.group(1)), int(hint.group(2))
    finally:
        connection.close()
    return got


async def crowd(
    host: str, port: int, base: str, count: int, seconds: float, cookie: str | None = None
) -> list[Listened]:
    """``count`` listeners at once, started over the first second."""

    async def one(delay: float) -> Listened:
        await asyncio.sleep(delay)
        return await listen(host, port, base, seconds - delay, cookie)

    return await asyncio.gather(*(one(i / count) for i in range(count)))


def main(argv: list[str]) -> None:
    host, port, base, count, seconds = argv[:5]
    cookie = argv[5] if len(argv) > 5 else None
    result = asyncio.run(crowd(host, int(port), base, int(count), float(seconds), cookie))
    print(json.dumps([asdict(one) for one in result]))


if __name__ == "__main__":
    main(sys.argv[1:])
