"""The cache tier in front of a real origin: Varnish (and hitch) started by `serve --cache`.

What the tier must do for a crowd (deploy/varnish/callbridge.vcl): refuse the
unregistered itself, let the registered play, send the origin about one
request per part however many listen, keep bad requests from being cached as
good ones, end the replay on time, and speak HTTPS with HTTP/2.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta

import httpx
import pytest

from tests.edge.conftest import CachedServer
from tests.support.llhls import Connection, crowd

# Timing-sensitive: runs alone, after the parallel part of the suite (scripts/test).
pytestmark = pytest.mark.serial

LISTENERS = 120
SECONDS = 6.0


def _live(cached: CachedServer, **event: object) -> int:
    server = cached.server
    record = server.create_event(starts_in=timedelta(minutes=-1), **event)
    assert server.api("POST", f"/api/events/{record.id}/start").status_code == 200
    server.wait_for(
        lambda: (
            httpx.get(
                f"{server.http_url}/webcast/{record.id}/live/index.m3u8", timeout=5
            ).status_code
            in (200, 403)
        ),
        timeout=20,
    )
    return record.id


def test_the_unregistered_are_refused_at_the_tier_and_the_crowd_shares_one_copy(
    cached: CachedServer,
) -> None:
    event = _live(cached)  # registration required
    base = f"/webcast/{event}/live/"
    refused = httpx.get(cached.http_url + base + "index.m3u8", timeout=5)
    assert refused.status_code == 403
    assert "x-varnish" in refused.headers  # answered by the tier
    # A forged cookie fares no better.
    forged = httpx.get(
        cached.http_url + base + "init.mp4", headers={"Cookie": f"cb_wc_{event}=abc.def"}, timeout=5
    )
    assert forged.status_code == 403
    assert not cached.origin_requests(base), "the origin was asked for media it must refuse"
    refused_again = [httpx.get(cached.http_url + base + "init.mp4", timeout=5) for _ in range(20)]
    assert {r.status_code for r in refused_again} == {403}
    # One check per cookie value at the origin, however often the browser asks.
    assert cached.origin_requests(f"/webcast/{event}/access")[f"/webcast/{event}/access"] <= 2

    cookies = [cached.register(event, f"Analyst {n}") for n in range(3)]
    assert httpx.get(
        cached.http_url + base + "index.m3u8", headers={"Cookie": cookies[0]}, timeout=5
    ).is_success

    async def listen() -> list:  # type: ignore[type-arg]
        groups = [
            crowd("127.0.0.1", int(cached.http_url.rsplit(":", 1)[1]), base, LISTENERS // 3,
                  SECONDS, cookie)
            for cookie in cookies
        ]  # fmt: skip
        return [one for group in await asyncio.gather(*groups) for one in group]

    before = cached.origin_requests(base)
    listened = asyncio.run(listen())
    after = cached.origin_requests(base)
    reached = after - before
    got = [len(one.parts) for one in listened]
    errors = [one.errors for one in listened if one.errors]
    parts_asked = {part for one in listened for part in one.parts}
    blocking = {path: n for path, n in reached.items() if "_HLS_msn" in path}
    report = {
        "listeners": len(listened),
        "parts_per_listener_min": min(got),
        "parts_per_listener_max": max(got),
        "worst_lag_s": round(max(one.lag_s for one in listened), 3),
        "listener_requests": 2 * sum(got),
        "origin_requests": sum(reached.values()),
        "origin_requests_per_blocking_key_max": max(blocking.values()),
        "distinct_parts": len(parts_asked),
    }
    print("\nCACHE TIER", json.dumps(report))
    assert not errors, errors[:5]
    # Every listener got parts at the stream's rate (parts are 0.21 s; 0.32 s bounds it).
    assert min(got) >= (SECONDS - 2) / 0.32 * 0.8, report
    assert report["worst_lag_s"] < 1.5, report
    # The origin saw each blocking key and each part about once, not once per listener.
    assert max(blocking.values()) <= 2, blocking
    part_requests = [n for path, n in reached.items() if path.endswith(".m4s")]
    assert max(part_requests) <= 2, reached
    assert report["origin_requests"] <= 3 * len(parts_asked) + 10, report


def test_bad_requests_get_4xx_and_are_not_cached_as_good(cached: CachedServer) -> None:
    event = _live(cached, registration="off")
    base = f"/webcast/{event}/live/"
    bad = [
        "index.m3u8?_HLS_msn=abc",
        "index.m3u8?_HLS_msn=1&_HLS_part=-1",
        "index.m3u8?_HLS_part=1",
        "index.m3u8?x=" + "A" * 4000,
        "init.mp4?cache-buster=1",
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/secret_key",
        "index.m3u8%00",
        "index.m3u8?_HLS_msn=99999999999999999999",
    ]
    port = int(cached.http_url.rsplit(":", 1)[1])

    async def ask(paths: list[str]) -> list[int]:
        statuses = []
        for path in paths:
            connection = Connection("127.0.0.1", port)  # sends the path as written
            statuses.append((await connection.get(path))[0])
            connection.close()
        return statuses

    # Twice each: the second answer must not be a cached good one either.
    statuses = asyncio.run(ask([base + tail for tail in bad for _ in range(2)]))
    answers = dict(zip([tail for tail in bad for _ in range(2)], statuses, strict=True))
    assert all(400 <= status < 500 for status in statuses), answers
    assert answers["index.m3u8?x=" + "A" * 4000] == 414
    good = httpx.get(cached.http_url + base + "index.m3u8", timeout=10)
    assert good.status_code == 200 and good.text.startswith("#EXTM3U")


def test_a_replay_past_its_window_is_gone_through_the_tier(cached: CachedServer) -> None:
    server = cached.server
    record = server.create_event(starts_in=timedelta(days=-10), registration="off")
    assert server.api("POST", f"/api/events/{record.id}/start").status_code == 200
    assert server.api("POST", f"/api/events/{record.id}/end").status_code == 200
    for path in ("replay/index.m3u8", "replay.m4a", "captions.vtt"):
        answer = httpx.get(f"{cached.http_url}/webcast/{record.id}/{path}", timeout=10)
        assert answer.status_code == 410, (path, answer.status_code)
        assert "x-varnish" in answer.headers


def test_https_with_http2(cached: CachedServer) -> None:
    version = subprocess.run(
        [
            "curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
            f"{cached.https_url}/events",
        ],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    assert version == "2 200", version
