"""Kamailio in front of two bridge nodes, each on a host of its own, for the proxy's tests.

One Ethernet segment (``tests.support.netns.lan``) holds five hosts: the
carrier (sipp callers), the proxy (`callbridge proxy`), two bridge nodes
(`callbridge serve --trunk <proxy>/32`) and a stranger. The nodes share one
PostgreSQL, started here and reached across the segment: an event created
once is joinable on either node, as it must be when the proxy may send a
caller to any of them (two SQLite files would each need the event, and one
SQLite file shared by two writers on two machines is no deployment).

For the relaying tests, a host can listen on a UDP port (``UdpListener``:
what reaches it) and send datagrams from any source address and port
(``spoof``: a raw socket, as an attacker off the path does over UDP).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callbridge.store.db import Database
from callbridge.store.users import UserStore
from tests.support.netns import Host, lan
from tests.support.nodes import start_node
from tests.support.postgres import PostgresServer, find_bin_dir
from tests.support.procs import stop_tree
from tests.support.sipp import SippResult, run_sipp
from tests.support.wait import wait_until
from tests.telephony.conftest import RunningServer, _up, need

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIP_PORT = 5060
HTTP_PORT = 8000
PROBE_INTERVAL = 3  # s between the proxy's OPTIONS probes (short: the tests wait for them)
PROBE_THRESHOLD = 2
# A loaded 2-core machine can stall a node's event loop for a second or more; a
# node that misses this is taken out, which would skew the spread the tests check.
INVITE_TIMEOUT = 3.0


@dataclass
class Proxy:
    host: Host
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    @property
    def sip_target(self) -> str:
        return f"{self.host.address}:{SIP_PORT}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rpc(self, *command: str) -> str:
        """A Kamailio RPC command's answer, through its control socket."""
        done = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.workdir / 'kamailio_ctl'}", *command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def dispatcher(self) -> dict[str, str]:
        """Each node's SIP URI and its dispatcher flags (``AP`` in service, ``IP`` out)."""
        return dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", self.rpc("dispatcher.list")))

    def refusals(self) -> dict[str, int]:
        """The refusal counters of the windows not over: ``r<window>`` requests, ``s<window>``
        strangers' packets."""
        dump = self.rpc("htable.dump", "refusals")
        return {key: int(value) for key, value in re.findall(r"name: (\w+)\s+value: (\d+)", dump)}


@dataclass
class Cluster:
    carrier: Host
    stranger: Host
    proxy: Proxy
    nodes: list[RunningServer]
    hosts: dict[str, Host]  # a node's http_url -> its host
    node_url: str  # the database, as the nodes reach it
    tmp: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def host_of(self, node: RunningServer) -> Host:
        return self.hosts[node.http_url]

    def restart(self, node: RunningServer) -> RunningServer:
        """Start ``node`` again on its host (after it was killed); it replaces the old one."""
        host = self.host_of(node)
        again = _node(
            host, self.proxy.host, node.database, self.node_url, node.token, self.tmp,
            len(self.processes),
        )  # fmt: skip
        self.processes.append(again.process)
        self.nodes[self.nodes.index(node)] = again
        again.wait_for(lambda: _up(again), timeout=180)
        return again

    def call(
        self,
        tmp: Path,
        scenario: str,
        *,
        source: Host | None = None,
        target: str | None = None,
        **kwargs: object,
    ) -> SippResult:
        """sipp on ``source`` (the carrier) against ``target`` (the proxy)."""
        host = source or self.carrier
        tmp.mkdir(parents=True, exist_ok=True)
        return run_sipp(
            SCENARIOS / scenario if (SCENARIOS / scenario).exists() else Path(scenario),
            target or self.proxy.sip_target,
            tmp,
            local_ip=host.address,
            prefix=tuple(host.command()),
            **kwargs,  # type: ignore[arg-type]
        )


def _node(
    host: Host, proxy: Host, database: Database, url: str, token: str, tmp: Path, n: int
) -> RunningServer:
    # Its own recordings and keys; the database is shared.
    return start_node(
        url, database, token, tmp / f"node{n}", tmp / f"node{n}.log",
        http=(host.address, HTTP_PORT), sip=(host.address, SIP_PORT), rtp_ports="30000-30199",
        # Callers here send RTP only while they key their code.
        media_timeout=60,
        extra=("--trunk", f"{proxy.address}/32"),
        prefix=host.command(),
    )  # fmt: skip


def _proxy(
    host: Host,
    carrier: Host,
    nodes: list[Host],
    tmp: Path,
    probes: tuple[int, int, float] = (PROBE_INTERVAL, PROBE_THRESHOLD, INVITE_TIMEOUT),
) -> Proxy:
    workdir, log_path = tmp / "proxy", tmp / "proxy.log"
    process = subprocess.Popen(
        host.command(
            sys.executable, "-m", "callbridge", "proxy",
            "--listen", f"{host.address}:{SIP_PORT}",
            *(f"--node={node.address}:{SIP_PORT}" for node in nodes),
            "--carrier", f"{carrier.address}/32",
            "--workdir", str(workdir),
            "--probe-interval", str(probes[0]),
            "--probe-threshold", str(probes[1]),
            "--invite-timeout", str(probes[2]),
        ),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Proxy(host, process, workdir, log_path)


@contextlib.contextmanager
def cluster(
    tmp: Path,
    probes: tuple[int, int, float] = (PROBE_INTERVAL, PROBE_THRESHOLD, INVITE_TIMEOUT),
) -> Iterator[Cluster]:
    """The carrier, the proxy, two nodes and a stranger, running; all gone afterwards.

    ``probes``: the proxy's probe interval (s), threshold and INVITE timeout (s).
    """
    need("sipp")
    need("kamailio")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        need("initdb")  # skips, or fails in CI, naming what is missing
        raise AssertionError("unreachable")
    with lan(5) as (carrier, proxy_host, node_a, node_b, stranger):
        postgres = PostgresServer(
            bin_dir, listen=(carrier.gateway,), trust=(f"{carrier.gateway}/24",)
        )
        postgres.start()
        processes: list[subprocess.Popen[bytes]] = []
        database: Database | None = None
        try:
            url = postgres.create_database()
            database = Database(url)
            database.upgrade()
            users = UserStore(database)
            users.add("operator", "correct horse battery")
            token = users.issue_token("operator")
            # The nodes reach the database across the segment.
            node_url = url.replace("127.0.0.1", carrier.gateway)
            nodes = [
                _node(host, proxy_host, database, node_url, token, tmp, n)
                for n, host in enumerate((node_a, node_b), start=1)
            ]
            processes += [node.process for node in nodes]
            proxy = _proxy(proxy_host, carrier, [node_a, node_b], tmp, probes)
            processes.append(proxy.process)
            for node in nodes:
                node.wait_for(lambda node=node: _up(node), timeout=180)  # type: ignore[misc]
            running = Cluster(
                carrier, stranger, proxy, nodes,
                {node.http_url: host for node, host in zip(nodes, (node_a, node_b), strict=True)},
                node_url, tmp, processes,
            )  # fmt: skip
            wait_in_service(running, {node_a.address, node_b.address}, timeout=30)
            yield running
        finally:
            for process in reversed(processes):
                stop_tree(process)
            if database is not None:
                database.dispose()
            postgres.stop()


def wait_in_service(cluster: Cluster, addresses: set[str], timeout: float) -> dict[str, str]:
    """Wait until the proxy has exactly ``addresses`` in service; the dispatcher's view."""
    deadline = time.monotonic() + timeout
    while True:
        if cluster.proxy.process.poll() is not None:
            raise AssertionError(f"the proxy exited:\n{cluster.proxy.log()[-3000:]}")
        view = cluster.proxy.dispatcher()
        active = {uri.split(":")[1] for uri, flags in view.items() if flags.startswith("A")}
        if view and active == addresses:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"in service: {view}\n{cluster.proxy.log()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("proxy")) as up:
        yield up


_LISTENER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    print(peer[0], data.split(b"\\r\\n", 1)[0].decode(errors="replace"), flush=True)
"""


class UdpListener:
    """A UDP socket on a host: the first line of every datagram that reaches it, and from where."""

    def __init__(self, host: Host, port: int, log: Path) -> None:
        self.address = (host.address, port)
        self.log = log
        self.process = subprocess.Popen(
            host.command(sys.executable, "-c", _LISTENER, host.address, str(port)),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self.lines()[:1] == ["ready"], 10, "the listener", self.log.read_text)

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def received(self) -> list[str]:
        """``SOURCE FIRST-LINE`` of each datagram so far."""
        return self.lines()[1:]

    def settle(self, via: Host) -> list[str]:
        """What reached it before a datagram sent now from ``via`` did (a marker: anything
        relayed earlier has had its time to arrive), without the marker."""
        marker = f"MARKER {time.monotonic_ns()}"
        spoof(via, [((via.address, 40000), self.address, marker.encode())])
        wait_until(
            lambda: any(line.endswith(marker) for line in self.received()), 10,
            "the marker to reach the listener", self.log.read_text,
        )  # fmt: skip
        return [line for line in self.received() if not line.startswith(via.address + " MARKER")]

    def close(self) -> None:
        stop_tree(self.process)


@contextlib.contextmanager
def listening(host: Host, port: int, log: Path) -> Iterator[UdpListener]:
    listener = UdpListener(host, port, log)
    try:
        yield listener
    finally:
        listener.close()


_SPOOFER = """
import json, socket, struct, sys
# A raw socket writes the IP header itself: any source address and port (IPv4;
# the kernel fills in the checksum and the id). No UDP checksum: 0 is allowed.
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for (src, sport), (dst, dport), payload, count in json.load(sys.stdin):
    for n in range(count):
        data = payload.replace("{n}", str(n)).encode()
        udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
            socket.inet_aton(src), socket.inet_aton(dst),
        )
        raw.sendto(ip + udp, (dst, 0))
"""


def spoof(
    sender: Host,
    datagrams: list[tuple[tuple[str, int], tuple[str, int], bytes]],
    count: int = 1,
) -> None:
    """Send each (source, destination, payload) from ``sender``, ``count`` times, whatever the
    source says; ``{n}`` in a payload becomes the copy's number (distinct branches)."""
    plan = [[list(src), list(dst), payload.decode(), count] for src, dst, payload in datagrams]
    subprocess.run(
        sender.command(sys.executable, "-c", _SPOOFER),
        input=json.dumps(plan).encode(), check=True, timeout=60, capture_output=True,
    )  # fmt: skip
