"""Trunks given by host name, located through a real DNS server (dnsmasq) as RFC 3263 says."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.asyncresolver
import pytest

from callbridge.bridge.sip_client import resolve
from callbridge.bridge.trunks import parse
from callbridge.sip.locate import Target
from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.wait import wait_until

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
)

# carrier.test: NAPTR to TLS first, then UDP; each SRV to two edges. udp-only.test: SRV
# only. plain.test: an address only. gone.test: nothing at all.
RECORDS = [
    "--host-record=edge1.carrier.test,192.0.2.1",
    "--host-record=edge2.carrier.test,192.0.2.2,2001:db8::2",
    "--host-record=plain.test,192.0.2.9",
    "--naptr-record=carrier.test,10,10,S,SIPS+D2T,,_sips._tcp.carrier.test",
    "--naptr-record=carrier.test,20,10,S,SIP+D2U,,_sip._udp.carrier.test",
    "--srv-host=_sips._tcp.carrier.test,edge1.carrier.test,5061,10,0",
    "--srv-host=_sips._tcp.carrier.test,edge2.carrier.test,5061,20,0",
    "--srv-host=_sip._udp.carrier.test,edge2.carrier.test,5080,10,0",
    "--srv-host=_sip._udp.udp-only.test,edge1.carrier.test,5070,10,0",
]


@pytest.fixture(scope="module")
def nameserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if DNSMASQ is None:
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
    port = free_port()
    log = tmp_path_factory.mktemp("dns") / "dnsmasq.log"
    process = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--no-poll", "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
         "--pid-file=", "--user=root", "--log-facility=-", "--log-queries", *RECORDS],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(
            lambda: process.poll() is None and "started" in log.read_text(),
            10,
            "dnsmasq did not start:",
            lambda: log.read_text()[-2000:],
        )
        yield port
    finally:
        stop_tree(process)


def _resolver(port: int) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    return resolver


TRUNKS = """
[[trunk]]
name = "located"
host = "carrier.test"

[[trunk]]
name = "srv-only"
host = "udp-only.test"
transport = "udp"

[[trunk]]
name = "port-given"
host = "carrier.test"
port = 5099
transport = "tcp"

[[trunk]]
name = "plain"
host = "plain.test"
transport = "tls"

[[trunk]]
name = "gone"
host = "gone.test"

[[trunk]]
name = "literal"
addresses = ["192.0.2.50"]

[[trunk]]
name = "hosts-file"
host = "localhost"
port = 5062
transport = "tcp"
"""


def test_trunks_are_located_by_naptr_srv_and_addresses(
    nameserver: int, caplog: pytest.LogCaptureFixture
) -> None:
    specs = parse(TRUNKS).trunk

    async def located() -> dict[str, list[Target]]:
        trunks = await resolve(specs, asyncio.get_running_loop(), _resolver(nameserver))
        return {t.spec.name: [Target(r.transport, *r.address) for r in t.routes()] for t in trunks}

    found = asyncio.run(located())
    assert found["located"] == [
        Target("TLS", "192.0.2.1", 5061),
        Target("TLS", "192.0.2.2", 5061),
        Target("TLS", "2001:db8::2", 5061),
        Target("UDP", "192.0.2.2", 5080),
        Target("UDP", "2001:db8::2", 5080),
    ]
    assert found["srv-only"] == [Target("UDP", "192.0.2.1", 5070)]
    # A port given: no SRV, only the host's addresses (it has none of its own: not used).
    assert "port-given" not in found
    assert found["plain"] == [Target("TLS", "192.0.2.9", 5061)]
    assert found["literal"] == [Target("UDP", "192.0.2.50", 5060)]
    # A name DNS does not know but the system does (/etc/hosts): found there.
    assert Target("TCP", "127.0.0.1", 5062) in found["hosts-file"]
    # A name that locates nowhere leaves its trunk out, and says so.
    assert "gone" not in found
    assert "trunk gone: gone.test locates nowhere" in caplog.text
