"""Hosts for the tests: Linux network namespaces, each joined to this one by a veth pair.

``hosts(2)`` makes two namespaces; host N has address 10.<net>.N.2 and
reaches this (the "origin's") namespace at 10.<net>.N.1, as two machines on
two links would. ``lan(n)`` puts n hosts and this namespace on one Ethernet
segment instead (a bridge in a namespace of its own), so that the hosts
reach each other too, as machines in one rack do, without this namespace
forwarding anything. Everything is removed on the way out. It needs root (CI
runs as root); elsewhere the tests that use it skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Host:
    name: str  # the namespace
    address: str  # the host's own address
    gateway: str  # this namespace's address on the host's link

    def command(self, *argv: str) -> list[str]:
        """``argv`` to run inside this host."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=10)


def need_namespaces() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("network namespaces need root and iproute2 (CI runs as root)")
        pytest.skip("network namespaces need root and iproute2")


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` hosts, each on its own link to this namespace; removed afterwards."""
    need_namespaces()
    tag = os.getpid() % 10_000
    net = 100 + os.getpid() % 150  # 10.<net>.0.0/16 for this run's links
    made: list[Host] = []
    try:
        for n in range(1, count + 1):
            name, here, there = f"cb{tag}h{n}", f"cb{tag}a{n}", f"cb{tag}b{n}"
            _ip("netns", "add", name)
            host = Host(name, f"10.{net}.{n}.2", f"10.{net}.{n}.1")
            made.append(host)
            _ip("link", "add", here, "type", "veth", "peer", "name", there)
            _ip("link", "set", there, "netns", name)
            _ip("addr", "add", f"{host.gateway}/24", "dev", here)
            _ip("link", "set", here, "up")
            _ip("-n", name, "addr", "add", f"{host.address}/24", "dev", there)
            _ip("-n", name, "link", "set", there, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "route", "add", "default", "via", host.gateway)
        yield made
    finally:
        for host in made:
            # Deleting the namespace deletes its end of the veth pair, and so the pair.
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=10)


@contextlib.contextmanager
def lan(count: int) -> Iterator[list[Host]]:
    """``count`` hosts and this namespace on one segment; removed afterwards.

    Host N is 10.<net>.0.N+1/24; this namespace is 10.<net>.0.1 (every
    host's ``gateway``). The segment is a bridge inside a namespace of its
    own, so this namespace's firewall and forwarding settings play no part.
    """
    need_namespaces()
    tag = os.getpid() % 10_000
    net = 100 + (os.getpid() + 75) % 150  # not the 10.<net> that hosts() picks
    switch = f"cb{tag}sw"
    gateway = f"10.{net}.0.1"
    made: list[Host] = []
    _ip("netns", "add", switch)
    try:
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        # This namespace's own port on the segment.
        here, port = f"cb{tag}l0", f"cb{tag}p0"
        _ip("link", "add", here, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", switch)
        _ip("-n", switch, "link", "set", port, "master", "br0", "up")
        _ip("addr", "add", f"{gateway}/24", "dev", here)
        _ip("link", "set", here, "up")
        for n in range(1, count + 1):
            name, there, port = f"cb{tag}n{n}", f"cb{tag}l{n}", f"cb{tag}p{n}"
            _ip("netns", "add", name)
            host = Host(name, f"10.{net}.0.{n + 1}", gateway)
            made.append(host)
            _ip("link", "add", there, "type", "veth", "peer", "name", port)
            _ip("link", "set", there, "netns", name)
            _ip("link", "set", port, "netns", switch)
            _ip("-n", switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{host.address}/24", "dev", there)
            _ip("-n", name, "link", "set", there, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield made
    finally:
        for host in made:
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=10)
        # The switch's namespace holds the bridge and the other ends of every pair.
        subprocess.run(["ip", "netns", "del", switch], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"cb{tag}l0"], capture_output=True, timeout=10)


@dataclass(frozen=True)
class NatSite:
    """A private host behind a NAT gateway, reached from this namespace (the public side).

    ``private`` runs the server (its address is ``private.address``, which
    this namespace has no route to); ``public_ip`` is the gateway's address
    on this namespace's link, whose forwarded ports reach the private host;
    ``callers`` are this namespace's own addresses on that link.
    """

    private: Host
    gateway: str  # the gateway's namespace
    public_ip: str
    callers: tuple[str, ...]


@contextlib.contextmanager
def behind_nat(
    tcp: tuple[int, ...], udp: tuple[int, ...], udp_range: tuple[int, int]
) -> Iterator[NatSite]:
    """A private host behind an nftables SNAT/DNAT gateway; removed afterwards, whatever happens.

    The gateway forwards ``tcp`` and ``udp`` ports and the ``udp_range`` (an
    RTP range) on its public address to the private host, and masquerades
    what the private host sends out, as a cloud VM's 1:1 NAT or a home
    router's port-forward does. This namespace gets two addresses on the
    public link (``callers``).
    """
    need_namespaces()
    if shutil.which("nft") is None:
        if os.environ.get("CI"):
            pytest.fail("nft is not installed (scripts/install-system installs nftables)")
        pytest.skip("nft is not installed")
    tag = os.getpid() % 10_000
    net = 100 + (os.getpid() + 37) % 150  # not the 10.<net> that hosts() or lan() pick
    gateway, private = f"cb{tag}gw", f"cb{tag}pv"
    outside, here = f"cb{tag}o1", f"cb{tag}o0"  # the public link: gateway, this namespace
    inside, there = f"cb{tag}i1", f"cb{tag}i0"  # the private link: gateway, private host
    public_ip, private_ip = f"10.{net}.1.2", f"10.{net}.2.2"
    callers = (f"10.{net}.1.1", f"10.{net}.1.3")
    made: list[str] = []
    try:
        for name in (gateway, private):
            _ip("netns", "add", name)
            made.append(name)
        _ip("link", "add", here, "type", "veth", "peer", "name", outside)
        _ip("link", "set", outside, "netns", gateway)
        for address in callers:
            _ip("addr", "add", f"{address}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", gateway, "addr", "add", f"{public_ip}/24", "dev", outside)
        _ip("-n", gateway, "link", "add", inside, "type", "veth", "peer", "name", there)
        _ip("-n", gateway, "link", "set", there, "netns", private)
        _ip("-n", gateway, "addr", "add", f"10.{net}.2.1/24", "dev", inside)
        for link in (outside, inside, "lo"):
            _ip("-n", gateway, "link", "set", link, "up")
        _ip("-n", private, "addr", "add", f"{private_ip}/24", "dev", there)
        _ip("-n", private, "link", "set", there, "up")
        _ip("-n", private, "link", "set", "lo", "up")
        _ip("-n", private, "route", "add", "default", "via", f"10.{net}.2.1")
        run = ["ip", "netns", "exec", gateway]
        subprocess.run([*run, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10)
        ports = ", ".join(str(p) for p in udp) + f", {udp_range[0]}-{udp_range[1]}"
        rules = f"""
table ip nat {{
    chain prerouting {{
        type nat hook prerouting priority dstnat;
        iifname "{outside}" tcp dport {{ {", ".join(str(p) for p in tcp)} }} dnat to {private_ip}
        iifname "{outside}" udp dport {{ {ports} }} dnat to {private_ip}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat;
        oifname "{outside}" masquerade
    }}
}}
"""
        subprocess.run([*run, "nft", "-f", "-"], input=rules.encode(), check=True, timeout=10)
        yield NatSite(Host(private, private_ip, f"10.{net}.2.1"), gateway, public_ip, callers)
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=10)
