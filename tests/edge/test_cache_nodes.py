"""Two cache nodes in front of one origin, each on a host of its own (network namespaces).

The way two cache hosts, or two CDN points of presence, front one origin:
each node runs `callbridge cache --origin ...` in its own namespace, linked
to the origin's namespace by a veth pair, and its listeners are local to it.
However many listen, the origin answers each blocking key and each part
about once per node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.edge.conftest import origin_requests
from tests.support.netns import Host, hosts
from tests.telephony.conftest import RunningServer, need, start_server

# Timing-sensitive: runs alone, after the parallel part of the suite (scripts/test).
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[2]
PER_NODE = 60
SECONDS = 6.0
NODE_PORT = 8080


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, list[Host]]]:
    need("varnishd")
    tmp = tmp_path_factory.mktemp("nodes")
    with (
        hosts(2) as two,
        start_server(
            tmp, "--host", "0.0.0.0", *(f"--trusted-proxy={h.address}/32" for h in two)
        ) as origin,
    ):
        origin_port = int(origin.http_url.rsplit(":", 1)[1])
        caches = [_cache_node(host, origin_port, tmp) for host in two]
        try:
            for host, cache in zip(two, caches, strict=True):
                _wait_node(host, cache, tmp / f"{host.name}.log")
            yield origin, two
        finally:
            for cache in caches:
                cache.terminate()
                try:
                    cache.wait(15)
                except subprocess.TimeoutExpired:
                    cache.kill()


def _cache_node(host: Host, origin_port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """`callbridge cache` on ``host``, in front of the origin across its link."""
    command = host.command(
        sys.executable, "-m", "callbridge", "cache",
        "--origin", f"{host.gateway}:{origin_port}",
        "--host", host.address, "--port", str(NODE_PORT),
    )  # fmt: skip
    log = (tmp / f"{host.name}.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _crowd(host: Host, base: str) -> subprocess.Popen[bytes]:
    """``PER_NODE`` LL-HLS listeners on ``host``, listening through its cache node."""
    command = host.command(
        sys.executable, "-m", "tests.support.llhls", host.address, str(NODE_PORT),
        base, str(PER_NODE), str(SECONDS),
    )  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)


def _wait_node(host: Host, cache: subprocess.Popen[bytes], log: Path) -> None:
    probe = host.command(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
        f"http://{host.address}:{NODE_PORT}/events",
    )  # fmt: skip
    for _ in range(150):
        if cache.poll() is not None:
            raise AssertionError(f"the cache node exited:\n{log.read_text()[-3000:]}")
        if subprocess.run(probe, capture_output=True, text=True).stdout == "200":
            return
        subprocess.run(["sleep", "0.2"])
    raise AssertionError(f"the cache node did not answer:\n{log.read_text()[-3000:]}")


def test_two_nodes_each_ask_the_origin_once_per_part(
    nodes: tuple[RunningServer, list[Host]],
) -> None:
    origin, two = nodes
    event = origin.create_event(starts_in=timedelta(minutes=-1), registration="off")
    assert origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
    base = f"/webcast/{event.id}/live/"
    origin.wait_for(
        lambda: httpx.get(origin.http_url + base + "index.m3u8", timeout=5).status_code == 200,
        timeout=20,
    )
    before = origin_requests(origin, base)
    crowds = [_crowd(host, base) for host in two]
    results = [json.loads(crowd.communicate(timeout=SECONDS + 30)[0]) for crowd in crowds]
    reached = origin_requests(origin, base) - before
    # Who asked: the origin's log names the client, as each node's X-Forwarded-For says.
    sources = Counter(
        line.split(" - ")[0].split()[-1].rsplit(":", 1)[0]
        for line in origin.log().splitlines()
        if f'"GET {base}' in line
    )
    listeners = [one for result in results for one in result]
    got = [len(one["parts"]) for one in listeners]
    blocking = {path: n for path, n in reached.items() if "_HLS_msn" in path}
    report = {
        "nodes": 2,
        "listeners": len(listeners),
        "parts_per_listener_min": min(got),
        "worst_lag_s": round(max(one["lag_s"] for one in listeners), 3),
        "listener_requests": 2 * sum(got),
        "origin_requests": sum(reached.values()),
        "origin_requests_per_blocking_key_max": max(blocking.values()),
        "origin_saw_clients": sorted(sources),
    }
    print("\nTWO CACHE NODES", json.dumps(report))
    assert not [one["errors"] for one in listeners if one["errors"]]
    assert min(got) >= (SECONDS - 2) / 0.32 * 0.8, report
    assert report["worst_lag_s"] < 1.5, report
    # About one request per key per node: two nodes, at most two (and a spare).
    assert max(blocking.values()) <= 3, blocking
    assert max(n for path, n in reached.items() if path.endswith(".m4s")) <= 3, reached
    # The nodes are the only clients the origin sees, and each one asked.
    assert {h.address for h in two} <= set(sources), sources
    # Listeners per node (the crowd's own requests) stayed at the nodes.
    assert report["origin_requests"] * 10 < report["listener_requests"], report


def test_the_origin_believes_forwarded_addresses_only_from_its_nodes(
    nodes: tuple[RunningServer, list[Host]],
) -> None:
    origin, two = nodes
    # Straight to the origin from this namespace, claiming to be someone else.
    httpx.get(origin.http_url + "/events", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    # Through a node: the node appends the real client (its own host here).
    probe = two[0].command(
        "curl", "-s", "-o", "/dev/null", "-H", "X-Forwarded-For: 198.51.100.7",
        f"http://{two[0].address}:{NODE_PORT}/events",
    )  # fmt: skip
    subprocess.run(probe, check=True, timeout=10)
    log = origin.log()
    assert "203.0.113.9" not in log  # a stranger's header is not believed
    assert f"{two[0].address}:0" in log or two[0].address in log
