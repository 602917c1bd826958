"""Kamailio in front of two bridge nodes on hosts of their own, driven by sipp callers.

The carrier's calls go to the proxy, which spreads them over both nodes by
their calls (a node holding calls gets the newcomers until it is even);
each caller keys the passcode (RTP straight to the node the SDP names: the
proxy carries no media) and joins; INFO, re-INVITEs and BYE follow the
recorded route, and so does the node's BYE when it ends the call. A node
that stops answering (frozen with SIGSTOP) leaves the rotation within seconds
and comes back when it answers again. A node killed with SIGKILL leaves it
too, a call still sent to it goes to the other, new calls all land on the
other, and the calls already there go on. Only the proxy may reach a node,
and only the carrier may reach the proxy.

The proxy relays nowhere else: a carrier's in-dialog request reaches a node
or nothing, whatever its Route headers, request URI or maddr say; a node
(known by address and port, here impersonated with spoofed UDP) reaches a
carrier for a call the proxy routed, or nothing; SIP from a node's address
on another port is a stranger's; a stray reply is not forwarded to its
second Via. A flood of refused packets leaves a few log lines a minute.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from callbridge.proxy.kamailio import route_token
from tests.proxy.conftest import (
    INVITE_TIMEOUT,
    PROBE_INTERVAL,
    PROBE_THRESHOLD,
    SIP_PORT,
    Cluster,
    listening,
    spoof,
    wait_in_service,
)
from tests.support.pcap import passcode_stream, write_pcap
from tests.support.procs import process_tree
from tests.support.sipp import SCENARIOS as TELEPHONY
from tests.support.sipp import SippResult
from tests.support.wait import wait_until
from tests.telephony.conftest import RunningServer

pytestmark = pytest.mark.sipp


def _pcap(tmp: Path, code: str) -> Path:
    pcap = tmp / f"code-{code}.pcap"
    write_pcap(pcap, passcode_stream([code + "#"]))
    return pcap


def _callers(node: RunningServer, event_id: int, prefix: str) -> list[dict[str, Any]]:
    return [
        p for p in node.participants(event_id) if str(p.get("caller_id", "")).startswith(prefix)
    ]


def _snapshot(cluster: Cluster, event_id: int, prefix: str) -> list[list[dict[str, Any]]]:
    return [_callers(node, event_id, prefix) for node in cluster.nodes]


def _dial(
    cluster: Cluster,
    tmp: Path,
    code: str,
    caller: str,
    *,
    calls: int = 1,
    stay_ms: int = 4000,
    rate: float = 1.0,
    timeout: float = 40,
    background_check: Any = None,
) -> SippResult:
    return cluster.call(
        tmp / caller, "dial_in.xml", calls=calls, rate=rate, limit=calls, timeout=timeout,
        substitutions={"pcap": str(_pcap(tmp, code)), "stay_ms": str(stay_ms), "caller": caller},
        background_check=background_check,
    )  # fmt: skip


def test_calls_through_the_proxy_land_on_both_nodes_and_join(
    running: Cluster, tmp_path: Path
) -> None:
    event = running.nodes[0].create_event(passcode="4242")
    seen: list[list[list[dict[str, Any]]]] = []

    def all_joined() -> bool:
        snapshot = _snapshot(running, event.id, "spread")
        seen.append(snapshot)
        return sum(len(on_node) for on_node in snapshot) == 4

    result = _dial(
        running, tmp_path, event.passcode, "spread", calls=4, rate=4, stay_ms=6000,
        background_check=all_joined,
    )  # fmt: skip
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    assert result.background, seen[-1:]
    on_nodes = seen[-1]
    # By load over two idle nodes: both took calls (two each, unless one was slow to answer
    # and the proxy moved a call on), every one a listener who keyed the code.
    assert all(on_nodes), on_nodes
    assert all(p["role"] == "listener" for on_node in on_nodes for p in on_node), on_nodes
    # In-dialog requests followed the recorded route: each BYE reached its node.
    for node in running.nodes:
        node.wait_for(lambda node=node: not _callers(node, event.id, "spread"), timeout=10)


def test_new_calls_go_to_the_node_holding_fewer_calls(running: Cluster, tmp_path: Path) -> None:
    """Spread by load: one node holds calls (the other was drained, then put back), and the
    next calls all go to the other until it has as many; round robin would split them."""
    event = running.nodes[0].create_event(passcode="6161")
    first, second = running.nodes
    second_uri = f"sip:{running.host_of(second).address}:{second.sip_port}"
    everyone = {running.host_of(n).address for n in running.nodes}
    # The second node drained by hand (a disabled node is not probed back in).
    running.proxy.rpc("dispatcher.set_state", "d", "1", second_uri)
    wait_in_service(running, {running.host_of(first).address}, timeout=10)
    held: dict[str, SippResult] = {}
    thread = threading.Thread(
        target=lambda: held.update(
            result=_dial(
                running, tmp_path, event.passcode, "holder", calls=3, rate=4,
                stay_ms=25_000, timeout=60,
            )
        )
    )  # fmt: skip
    thread.start()
    try:
        first.wait_for(lambda: len(_callers(first, event.id, "holder")) == 3, timeout=30)
        running.proxy.rpc("dispatcher.set_state", "a", "1", second_uri)
        wait_in_service(running, everyone, timeout=10)

        def spread() -> list[int] | None:
            counts = [len(on_node) for on_node in _snapshot(running, event.id, "newcomer")]
            return counts if sum(counts) == 3 else None

        newcomers = _dial(
            running, tmp_path, event.passcode, "newcomer", calls=3, rate=4, stay_ms=4000,
            background_check=spread,
        )  # fmt: skip
        assert newcomers.ok, newcomers.output[-2000:] + newcomers.errors[-2000:]
        counts = newcomers.background
        # The node with three calls took none of the three new ones.
        assert counts == [0, 3], counts
        assert len(_callers(first, event.id, "holder")) == 3
        print(f"\nPROXY SPREAD: three holders on one node; the three newcomers went {counts}")
    finally:
        running.proxy.rpc("dispatcher.set_state", "a", "1", second_uri)
        thread.join(timeout=70)
    result = held["result"]
    assert result.ok, result.output[-2000:] + result.errors[-2000:]


def test_info_and_re_invites_follow_the_recorded_route(running: Cluster, tmp_path: Path) -> None:
    """The passcode keyed by SIP INFO alone (no RTP at all) joins: the INFOs reached the node
    that answered, through the proxy; so do the hold and unhold re-INVITEs and the BYE."""
    event = running.nodes[0].create_event(passcode="4343")
    keys = {f"key{i}": key for i, key in enumerate("4343#")}

    def joined() -> list[dict[str, Any]]:
        return [p for on in _snapshot(running, event.id, "indialog") for p in on]

    result = running.call(
        tmp_path, "in_dialog.xml", timeout=40, background_check=joined,
        substitutions={"caller": "indialog", "stay_ms": "1000", **keys},
    )  # fmt: skip
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    assert result.background and result.background[0]["role"] == "listener", result.background


def test_an_invite_straight_to_a_node_is_refused(running: Cluster, tmp_path: Path) -> None:
    node = running.nodes[0]
    target = f"{running.host_of(node).address}:{node.sip_port}"
    result = running.call(tmp_path, str(TELEPHONY / "refused.xml"), target=target, timeout=10)
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    node.wait_for(lambda: f"SIP from {running.carrier.address} refused" in node.log())


def test_an_invite_to_the_proxy_from_outside_the_carrier_networks_is_refused(
    running: Cluster, tmp_path: Path
) -> None:
    result = running.call(
        tmp_path, str(TELEPHONY / "refused.xml"), source=running.stranger, timeout=10
    )
    assert result.ok, result.output[-2000:] + result.errors[-2000:]
    refused = f"refused INVITE from {running.stranger.address}"
    running.nodes[0].wait_for(lambda: refused in running.proxy.log(), timeout=5)
    # Nothing reached a node.
    assert not any(running.stranger.address in node.log() for node in running.nodes)


def test_the_node_hangs_up_through_the_proxy(running: Cluster, tmp_path: Path) -> None:
    """A node's in-dialog request (its BYE when the call ends) reaches the carrier."""
    event = running.nodes[0].create_event(passcode="7171")

    def ended() -> bool:
        on = _snapshot(running, event.id, "ender")
        if not any(on):
            return False
        node = running.nodes[0] if on[0] else running.nodes[1]
        assert node.api("POST", f"/api/events/{event.id}/start").status_code == 200
        assert node.api("POST", f"/api/events/{event.id}/end").status_code == 200
        return True

    result = running.call(
        tmp_path, "hung_up_on.xml", timeout=40, background_check=ended,
        substitutions={
            "pcap": str(_pcap(tmp_path, event.passcode)), "caller": "ender",
            "bye_timeout_ms": "30000",
        },
    )  # fmt: skip
    assert result.background, "the caller never joined"
    assert result.ok, result.report


def _token(cluster: Cluster, call_id: str) -> str:
    """The Route mark the proxy records for ``call_id`` (from its key, as the script makes it)."""
    key = (cluster.proxy.workdir / "route.key").read_text().strip()
    return route_token(key, call_id)


def test_a_carriers_in_dialog_request_reaches_a_node_or_nothing(
    running: Cluster, tmp_path: Path
) -> None:
    """Crafted routes from the carrier (crafted_routes.xml): a second Route, a request URI or a
    maddr naming the stranger, a host name, a forged or missing mark: each refused, and nothing
    reaches the stranger; the call's own route still reaches its node."""
    node = running.nodes[0]
    call_id = f"crafted-{secrets.token_hex(4)}"
    with listening(running.stranger, SIP_PORT, tmp_path / "stranger.log") as stranger:
        result = running.call(
            tmp_path, "crafted_routes.xml", timeout=20,
            extra=["-cid_str", call_id],
            substitutions={
                "proxy": running.proxy.host.address,
                "node": f"{running.host_of(node).address}:{node.sip_port}",
                "stranger": running.stranger.address, "token": _token(running, call_id),
            },
        )  # fmt: skip
        assert result.ok, result.report
        assert stranger.settle(via=running.carrier) == []


def _sip(
    method: str, uri: str, source: tuple[str, int], call_id: str, routes: tuple[str, ...] = ()
) -> bytes:
    """A request as a node sends it (a to-tag: in a dialog) unless ``method`` is INVITE."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK{{n}}{secrets.token_hex(4)}",
        *(f"Route: {route}" for route in routes),
        f"From: <sip:callbridge@{source[0]}:{source[1]}>;tag=node",
        "To: <sip:caller@carrier.invalid>" + ("" if method == "INVITE" else ";tag=caller"),
        f"Call-ID: {call_id}",
        f"CSeq: 7 {method}",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_node_reaches_a_carrier_for_a_routed_call_or_nothing(
    running: Cluster, tmp_path: Path
) -> None:
    """The node's address and SIP port, spoofed from the stranger's host: a new INVITE to the
    stranger, BYEs whose next hop is the stranger, a BYE with a forged mark and a stray reply
    aimed at the stranger's Via all go nowhere; a BYE of a routed call reaches the carrier."""
    node = running.nodes[0]
    source = (running.host_of(node).address, node.sip_port)
    proxy = (running.proxy.host.address, SIP_PORT)
    stranger = f"{running.stranger.address}:{SIP_PORT}"
    call_id = f"spoofed-{secrets.token_hex(4)}"
    ours = f"<sip:{proxy[0]}:{proxy[1]};lr;cbt={_token(running, call_id)}>"
    forged = f"<sip:{proxy[0]}:{proxy[1]};lr;cbt={'0' * 32}>"
    with (
        listening(running.stranger, SIP_PORT, tmp_path / "stranger.log") as at_stranger,
        listening(running.carrier, 5070, tmp_path / "carrier.log") as at_carrier,
    ):
        carrier = f"sip:caller@{running.carrier.address}:5070"
        reply = (
            "SIP/2.0 200 OK\r\n"
            f"Via: SIP/2.0/UDP {proxy[0]}:{proxy[1]};branch=z9hG4bKnone{{n}}\r\n"
            f"Via: SIP/2.0/UDP {stranger};branch=z9hG4bKstray\r\n"
            f"From: <sip:a@{stranger}>;tag=a\r\nTo: <sip:b@{stranger}>;tag=b\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        spoof(running.stranger, [
            (source, proxy, _sip("INVITE", f"sip:19135550123@{stranger}", source, call_id)),
            (source, proxy, _sip("BYE", f"sip:caller@{stranger}", source, call_id, (ours,))),
            (source, proxy, _sip("BYE", carrier, source, call_id, (ours, f"<sip:{stranger};lr>"))),
            (source, proxy, _sip("BYE", carrier.replace("caller", "forged"), source, call_id,
                                 (forged,))),
            (source, proxy, reply),
            # Last, the one that goes through: the carrier's listener hears it.
            (source, proxy, _sip("BYE", carrier, source, call_id, (ours,))),
        ])  # fmt: skip
        heard = node.wait_for(
            lambda: [line for line in at_carrier.received() if "BYE" in line], timeout=10
        )
        assert heard[0] == f"{proxy[0]} BYE {carrier} SIP/2.0", heard
        assert at_stranger.settle(via=running.carrier) == []
        assert not any("forged" in line for line in at_carrier.received())


def test_sip_from_a_nodes_address_on_another_port_is_refused(
    running: Cluster, tmp_path: Path
) -> None:
    """A node is its address and its SIP port: from another port, a BYE of a routed call
    toward the carrier is a stranger's, refused, and the carrier hears nothing."""
    node = running.host_of(running.nodes[0])
    call_id = f"port-{secrets.token_hex(4)}"
    proxy = running.proxy.host.address
    with listening(running.carrier, 5070, tmp_path / "carrier.log") as at_carrier:
        result = running.call(
            tmp_path, "in_dialog_bye.xml", source=node, timeout=10, extra=["-cid_str", call_id],
            substitutions={
                "target": f"sip:wrong-port@{running.carrier.address}:5070",
                "route": f"<sip:{proxy}:{SIP_PORT};lr;cbt={_token(running, call_id)}>",
                "status": "403",
            },
        )  # fmt: skip
        assert result.ok, result.report
        # (The earlier test's BYE may still be retransmitted there: only this one matters.)
        heard = at_carrier.settle(via=running.stranger)
        assert not [line for line in heard if "wrong-port" in line], heard


def test_a_frozen_node_leaves_the_rotation_and_comes_back_when_it_answers_again(
    running: Cluster,
) -> None:
    node = running.nodes[1]
    everyone = {running.host_of(n).address for n in running.nodes}
    frozen = process_tree(node.process.pid)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        wait_in_service(running, everyone - {running.host_of(node).address}, timeout=20)
        out_after = time.monotonic() - stopped
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    thawed = time.monotonic()
    wait_in_service(running, everyone, timeout=PROBE_INTERVAL * 2 + 5)
    back_after = time.monotonic() - thawed
    assert out_after <= PROBE_INTERVAL * PROBE_THRESHOLD + INVITE_TIMEOUT + 2, out_after
    print(f"\nPROXY: a frozen node was out after {out_after:.1f} s, back {back_after:.1f} s after")


def test_a_killed_node_leaves_the_rotation_and_its_calls_go_to_the_other(
    running: Cluster, tmp_path: Path
) -> None:
    event = running.nodes[0].create_event(passcode="5151")
    # A caller who stays through the whole test: whichever node takes it survives.
    stayer: dict[str, SippResult] = {}
    thread = threading.Thread(
        target=lambda: stayer.update(
            result=_dial(running, tmp_path, event.passcode, "stayer", stay_ms=25_000, timeout=50)
        )
    )
    thread.start()
    try:

        def holding() -> list[bool] | None:
            on = [bool(callers) for callers in _snapshot(running, event.id, "stayer")]
            return on if any(on) else None

        holder = running.nodes[0].wait_for(holding, timeout=20)
        survivor, killed = running.nodes if holder[0] else running.nodes[::-1]
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=10)
        died = time.monotonic()

        # The probes alone take the dead node out.
        alive = {running.host_of(survivor).address}
        wait_in_service(running, alive, timeout=20)
        detected = time.monotonic() - died
        # Probed every PROBE_INTERVAL s, out after PROBE_THRESHOLD misses (each INVITE_TIMEOUT).
        assert detected <= PROBE_INTERVAL * PROBE_THRESHOLD + INVITE_TIMEOUT + 2, detected

        # Put the dead node back in rotation by hand, as if the probes had not caught it
        # yet: a new call sent to it gets no answer, and the proxy tries the next node.
        dead_uri = f"sip:{running.host_of(killed).address}:{killed.sip_port}"
        running.proxy.rpc("dispatcher.set_state", "a", "1", dead_uri)
        started = time.monotonic()
        early = _dial(running, tmp_path, event.passcode, "early", calls=2, rate=4, stay_ms=2000)
        assert early.ok, early.output[-2000:] + early.errors[-2000:]
        assert f"node {dead_uri} did not answer" in running.proxy.log()
        failover_calls_s = time.monotonic() - started
        wait_in_service(running, alive, timeout=20)

        late = _dial(
            running, tmp_path, event.passcode, "late", calls=4, rate=4, stay_ms=3000,
            background_check=lambda: len(_callers(survivor, event.id, "late")) == 4,
        )  # fmt: skip
        assert late.ok, late.output[-2000:] + late.errors[-2000:]
        assert late.background, "the late callers were not all on the surviving node"
        # The caller on the survivor was there all along.
        assert _callers(survivor, event.id, "stayer")
        print(
            f"\nPROXY FAILOVER: the dead node left the rotation {detected:.1f} s after SIGKILL; "
            f"two calls failed over to the other node in {failover_calls_s:.1f} s"
        )
    finally:
        thread.join(timeout=60)
    result = stayer["result"]
    assert result.ok, result.output[-2000:] + result.errors[-2000:]


def test_a_flood_of_refused_packets_leaves_a_few_log_lines(
    running: Cluster, tmp_path: Path
) -> None:
    """2,000 malformed INVITEs from the stranger (dropped before parsing, but for the first few)
    and 2,000 spoofed node requests toward the stranger (refused one by one): a few lines in
    the proxy's log, the rest counted. Last in the module: it spends the minute's budgets."""
    before = running.proxy.log()
    source = (running.host_of(running.nodes[1]).address, running.nodes[1].sip_port)
    proxy = (running.proxy.host.address, SIP_PORT)
    invite = _sip("INVITE", f"sip:1@{running.stranger.address}", source, "flood")
    strangers = running.call(
        tmp_path, "flood.xml", source=running.stranger, calls=2000, rate=2000, timeout=20
    )
    assert strangers.ok, strangers.report
    spoof(running.stranger, [(source, proxy, invite)], count=2000)

    last: list[tuple[int, int]] = []

    def counted() -> tuple[int, int] | None:
        """The counts once the flood has been taken in (the same twice in a row)."""
        counts = running.proxy.refusals()
        seen = (
            sum(v for k, v in counts.items() if k.startswith("s")),
            sum(v for k, v in counts.items() if k.startswith("r")),
        )
        settled = last[-1:] == [seen]
        last.append(seen)
        # A burst over UDP loses some (a tenth here, on a loaded machine); most must arrive.
        return seen if settled and min(seen) >= 1000 else None

    taken_in = wait_until(
        counted, 20, "the flood counted", lambda: f"{running.proxy.refusals()}", interval=0.5
    )
    assert taken_in is not None
    strangers_seen, refused = taken_in
    added = running.proxy.log()[len(before) :]
    # A minute logs at most REFUSALS_LOGGED (10) refusals and a line saying the rest are
    # counted, and Kamailio's parser complains (about 1 kB) of the few strangers' packets it
    # reads (STRANGERS_ANSWERED, 10); the flood may straddle two minutes. Logged one by one,
    # the flood would have written over 2 MB.
    refusals = [line for line in added.splitlines() if "refused" in line]
    assert len(refusals) <= 2 * 10, added[-3000:]
    assert len(added.encode()) < 2 * (10 * 1100 + 11 * 250), added[-3000:]
    print(
        f"\nPROXY FLOOD: {strangers_seen} strangers' packets and {refused} refused requests "
        f"left {len(added.splitlines())} log lines, {len(added.encode())} bytes"
    )
