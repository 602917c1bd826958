"""The active origin's whole host lost: each node on a host of its own (network namespaces).

One segment holds the active origin, its standby and an edge; this
namespace is the carrier (its phones dial the edge) and runs the shared
PostgreSQL. Every process of the active origin's host is SIGKILLed at once,
as a host that loses power, or its link is cut (``ip link set down``): the
standby takes over and the edge's listener hears the speaker on with no
pause of a second. The host's origin started again, or its link mended,
comes back as the standby: exactly one active origin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from callbridge.store.db import Database
from tests.cascade.conftest import shared_store
from tests.cascade.test_standby import (
    SPEAKER_HZ,
    _back_as_the_standby,
    _heard_across_the_switch,
    _hears_speaker,
    _longest_pause,
    _state,
)
from tests.cascade.test_through_proxy import HTTP_PORT, SIP_PORT, ProxiedPhone, _up
from tests.support.netns import Host, lan
from tests.support.nodes import start_node
from tests.support.phone import tone
from tests.support.postgres import find_bin_dir
from tests.support.procs import stop_tree
from tests.support.wait import wait_until
from tests.telephony.conftest import RunningServer, need

pytestmark = [pytest.mark.postgres, pytest.mark.serial]


def _node(host: Host, carrier: str, url: str, db: Database, token: str, tmp: Path, name: str,
          *extra: str) -> RunningServer:  # fmt: skip
    return start_node(
        url, db, token, tmp / name, tmp / f"{name}.log",
        http=(host.address, HTTP_PORT), sip=(host.address, SIP_PORT), rtp_ports="30000-30199",
        media_timeout=30,
        extra=("--trunk", f"{carrier}/32", "--node-id", name,
               "--bus-key-file", str(tmp / "bus.key"), *extra),
        prefix=host.command(),
    )  # fmt: skip


def _power_off(host: Host) -> None:
    """SIGKILL every process on ``host`` at once."""
    pids = subprocess.run(
        ["ip", "netns", "pids", host.name], capture_output=True, text=True, check=True
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _link(host: Host, state: str) -> None:
    """Set ``host``'s link to the segment up or down."""
    links = subprocess.run(
        ["ip", "-n", host.name, "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    (device,) = [line.split(":")[1].strip().split("@")[0] for line in links if " lo:" not in line]
    subprocess.run(["ip", "-n", host.name, "link", "set", device, state], check=True)


# "power" (every process of the host SIGKILLed at once) is the loopback test's case
# (test_standby.py) and bench/failover_bench.py's; here the host's link is cut, which
# only separate hosts can show. Both run with CALLBRIDGE_ALL_LOSSES=1.
LOSSES = ["power", "link"] if os.environ.get("CALLBRIDGE_ALL_LOSSES") else ["link"]


@pytest.mark.parametrize("loss", LOSSES)
def test_the_active_origins_host_lost_the_standby_host_plays_on(tmp_path: Path, loss: str) -> None:
    if find_bin_dir() is None:
        need("initdb")
    with lan(3) as (host_a, host_b, edge_host):
        carrier = host_a.gateway
        options = {"listen": (carrier,), "trust": (f"{carrier}/24",)}
        with shared_store(tmp_path, **options) as store:
            database, token = store.database, store.token
            processes: list[subprocess.Popen[bytes]] = []
            try:
                node_url = store.url.replace("127.0.0.1", carrier)
                origin = ("--role", "origin", f"--edge=edge-a={edge_host.address}")
                first = _node(
                    host_a, carrier, node_url, database, token, tmp_path, "origin-a", *origin
                )
                processes.append(first.process)
                first.wait_for(lambda: _state(first) == "active", timeout=240)
                second = _node(
                    host_b, carrier, node_url, database, token, tmp_path, "origin-b", *origin,
                    "--standby",
                )  # fmt: skip
                edge = _node(
                    edge_host,
                    carrier,
                    node_url,
                    database,
                    token,
                    tmp_path,
                    "edge-a",
                    "--role",
                    "edge",
                )
                processes += [second.process, edge.process]
                for node in (first, second, edge):
                    node.wait_for(lambda node=node: _up(node), timeout=240)  # type: ignore[misc]
                second.wait_for(lambda: _state(second) == "standby", timeout=30)

                event = first.create_event(passcode="6161")
                assert first.api("POST", f"/api/events/{event.id}/start").status_code == 200
                assert event.speaker_passcode is not None
                speaker = ProxiedPhone(edge_host, carrier)
                listener = ProxiedPhone(edge_host, carrier)
                try:
                    speaker.voice = tone(SPEAKER_HZ)
                    for phone, code in ((speaker, event.speaker_passcode), (listener, "6161")):
                        phone.call()
                        time.sleep(1.0)
                        phone.press(code + "#")
                    wait_until(
                        lambda: _hears_speaker(listener), 20, "the speaker heard on the edge"
                    )
                    time.sleep(2.0)

                    killed = time.monotonic()
                    if loss == "power":
                        _power_off(host_a)
                    else:
                        _link(host_a, "down")
                    pause = _heard_across_the_switch(listener, second, killed, "the standby host")
                    assert pause < 1.0, f"the listener heard nothing for {pause * 1000:.0f} ms"

                    if loss == "power":
                        # The host comes back, its origin started again: the standby.
                        _back_as_the_standby(first, processes)
                    else:
                        # The link mended: the cut-off origin, which could renew nothing, reads
                        # the row (or hears the new epoch) and stands down; the listener hears on.
                        mended = time.monotonic()
                        _link(host_a, "up")
                        first.wait_for(lambda: _state(first) == "standby", timeout=30)
                        time.sleep(2.0)
                        pause = max(pause, _longest_pause(listener, mended, time.monotonic()))
                        assert pause < 1.0, f"the listener heard nothing for {pause * 1000:.0f} ms"
                    assert _state(second) == "active" and _hears_speaker(listener)
                finally:
                    for phone in (speaker, listener):
                        phone.hang_up(bye=False)
                print(
                    f"\nSTANDBY HOST ({loss} lost): the edge's listener's"
                    f" longest pause: {pause * 1000:.0f} ms"
                )
            finally:
                for process in reversed(processes):
                    stop_tree(process)
