"""Hosts for the tests: Linux network namespaces, each joined to this one by a veth pair.

``hosts(2)`` makes two namespaces; host N has address 10.<net>.N.2 and
reaches this (the "origin's") namespace at 10.<net>.N.1, as two machines on
two links would. Everything is removed on the way out. It needs root (CI
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
