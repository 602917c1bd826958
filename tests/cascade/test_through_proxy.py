"""The cascade behind Kamailio, each node on a host of its own (network namespaces).

One segment holds the proxy, the origin and two edges; this namespace is
the carrier (its phones dial the proxy) and runs the shared PostgreSQL.
Kamailio spreads every call over the two edges by load; the speaker's call lands on
one of them and is sent up to the origin as an open line is, the origin
mixes and sends the mix once to each edge, and the edges' listeners hear
it. ``*1`` from a listener reaches the origin's queue, the opened line is
heard on the other edge, and an edge killed with SIGKILL leaves the
rotation: new calls land on the other edge, whose callers hear on.

A second proxy beside the first gives speakers a line of their own
(``--speaker-line``), sent to the origin (``--speaker-node``): a speaker
dialling it lands on the origin, and the edge's death leaves them heard
while the console lists the edge's callers as lost with it.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from callbridge.cascade.seal import generate_key_file
from callbridge.store.db import Database
from callbridge.store.users import UserStore
from tests.cascade.conftest import tone_level
from tests.proxy.conftest import Proxy, _proxy
from tests.support.netns import Host, lan
from tests.support.nodes import start_node
from tests.support.phone import Phone, final_response, tone
from tests.support.postgres import PostgresServer, find_bin_dir
from tests.support.procs import stop_tree
from tests.support.wait import wait_until
from tests.telephony.conftest import DID, RunningServer, need

SIP_PORT, HTTP_PORT = 5060, 8000
SPEAKER_HZ, QUESTION_HZ = 440.0, 1000.0


class ProxiedPhone(Phone):
    """A ``Phone`` on this namespace's address that dials the proxy and follows its route."""

    def __init__(self, proxy: Host, carrier: str, number: str = DID, port: int = SIP_PORT) -> None:
        super().__init__(0, number, host=carrier)
        self.server = (proxy.address, port)
        self.route = ""
        self.target = ""

    def call(self, timeout: float = 15.0) -> None:
        offer_port = self.rtp.getsockname()[1]
        from tests.sip.uac import OFFER

        offer = OFFER.replace("m=audio 40000", f"m=audio {offer_port}")
        offer = offer.replace("127.0.0.1", self.rtp.getsockname()[0])
        self.sip.sendto(self.uac.invite(offer), self.server)
        answer = final_response(self.sip, self.uac.call_id, timeout)
        assert answer.startswith(b"SIP/2.0 200"), answer[:300]
        self.uac.learn(answer)
        text = answer.decode()
        routes = re.findall(r"^Record-Route: (.+?)\r$", text, re.MULTILINE)
        self.route = f"Route: {', '.join(routes)}" if routes else ""
        contact = re.search(r"^Contact: *<([^>]+)>", text, re.MULTILINE)
        assert contact, text
        self.target = contact[1]
        self.sip.sendto(self._in_dialog("ACK", self.uac.cseq), self.server)
        port = re.search(r"m=audio (\d+)", text)
        host = re.search(r"c=IN IP4 (\S+)", text)
        assert port and host, text
        self.bridge_rtp = (host[1], int(port[1]))
        self._start_media()

    def _in_dialog(self, method: str, cseq: int) -> bytes:
        """A request in the call: to the node's Contact, along the proxy's recorded route."""
        branch = "z9hG4bK" + secrets.token_hex(6)
        request = self.uac._request(method, branch, cseq, extra=self.route)
        _, rest = request.split(b"\r\n", 1)
        return f"{method} {self.target} SIP/2.0".encode() + b"\r\n" + rest

    def _start_media(self) -> None:
        import threading

        for target in (self._send_loop, self._hear_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def hang_up(self, bye: bool = True) -> None:
        """Stop the media, send BYE (``bye``: not when the node holding the call died)."""
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        if bye and self.bridge_rtp is not None:
            self.uac.cseq += 1
            self.sip.sendto(self._in_dialog("BYE", self.uac.cseq), self.server)
            final_response(self.sip, self.uac.call_id, 2.0)
        self.sip.close()
        self.rtp.close()


@dataclass
class Cluster:
    carrier: str
    proxy: Proxy
    origin: RunningServer
    edges: dict[str, RunningServer]  # by node id
    hosts: dict[str, Host]

    def live(self, event_id: int) -> dict[str, Any]:
        response = self.origin.api("GET", f"/api/events/{event_id}/live")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def on(self, event_id: int) -> dict[str, str]:
        """Each caller's participant id → the node it is on."""
        return {p["id"]: p["id"].rsplit("@", 1)[-1] for p in self.live(event_id)["participants"]}

    def in_service(self) -> set[str]:
        view = dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", self.proxy.rpc("dispatcher.list")))
        return {uri.split(":")[1] for uri, flags in view.items() if flags.startswith("A")}


def _node(host: Host, proxy: Host, url: str, db: Database, token: str, tmp: Path, role: str,
          name: str, edges: dict[str, Host]) -> RunningServer:  # fmt: skip
    registered = [f"--edge={n}={h.address}" for n, h in edges.items()] if role == "origin" else []
    return start_node(
        url, db, token, tmp / name, tmp / f"{name}.log",
        http=(host.address, HTTP_PORT), sip=(host.address, SIP_PORT), rtp_ports="30000-30199",
        media_timeout=30,
        extra=("--trunk", f"{proxy.address}/32", "--role", role, "--node-id", name,
               "--bus-key-file", str(tmp / "bus.key"), *registered),
        prefix=host.command(),
    )  # fmt: skip


def _up(node: RunningServer) -> bool:
    if node.process.poll() is not None:
        raise AssertionError(f"a node exited:\n{node.log()[-3000:]}")
    try:
        return httpx.get(node.http_url + "/events", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need("kamailio")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        need("initdb")
        raise AssertionError("unreachable")
    tmp = tmp_path_factory.mktemp("cascade-proxy")
    with lan(4) as (proxy_host, origin_host, edge_a, edge_b):
        carrier = proxy_host.gateway  # this namespace: the phones and PostgreSQL
        postgres = PostgresServer(bin_dir, listen=(carrier,), trust=(f"{carrier}/24",))
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
            node_url = url.replace("127.0.0.1", carrier)
            hosts = {"origin": origin_host, "edge-a": edge_a, "edge-b": edge_b}
            generate_key_file(tmp / "bus.key")
            nodes = {
                name: _node(
                    host,
                    proxy_host,
                    node_url,
                    database,
                    token,
                    tmp,
                    "origin" if name == "origin" else "edge",
                    name,
                    {"edge-a": edge_a, "edge-b": edge_b},
                )
                for name, host in hosts.items()
            }
            processes += [node.process for node in nodes.values()]
            carrier_host = Host("", carrier, carrier)
            proxy = _proxy(proxy_host, carrier_host, [edge_a, edge_b], tmp)
            processes.append(proxy.process)
            for node in nodes.values():
                node.wait_for(lambda node=node: _up(node), timeout=240)  # type: ignore[misc]
            up = Cluster(
                carrier, proxy, nodes["origin"],
                {n: nodes[n] for n in ("edge-a", "edge-b")}, hosts,
            )  # fmt: skip
            wait_until(lambda: up.in_service() == {edge_a.address, edge_b.address}, 40, "rotation")
            yield up
        finally:
            for process in reversed(processes):
                stop_tree(process)
            if database is not None:
                database.dispose()
            postgres.stop()


def _heard_since(phone: Phone, since: float) -> npt.NDArray[np.int16]:
    frames = [f for t, f in zip(phone.heard.times, phone.heard.frames, strict=False) if t >= since]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def _join(up: Cluster, phone: ProxiedPhone, code: str, event_id: int) -> str:
    """Dial the proxy and key ``code``; returns the caller's participant id."""
    before = set(up.on(event_id))
    phone.call()
    time.sleep(1.0)
    phone.press(code + "#")
    new = wait_until(lambda: set(up.on(event_id)) - before, 20, "the caller on the origin's call")
    (pid,) = new
    return str(pid)


def test_the_cascade_behind_kamailio(cluster: Cluster) -> None:
    up = cluster
    event = up.origin.create_event(passcode="4242")
    assert up.origin.api("POST", f"/api/events/{event.id}/start").status_code == 200
    phones: list[ProxiedPhone] = []
    try:
        speaker = ProxiedPhone(up.proxy.host, up.carrier)
        phones.append(speaker)
        speaker.voice = tone(SPEAKER_HZ)
        assert event.speaker_passcode is not None
        speaker_id = _join(up, speaker, event.speaker_passcode, event.id)
        listeners: dict[str, ProxiedPhone] = {}
        for _ in range(4):  # spread by load: both edges take some
            phone = ProxiedPhone(up.proxy.host, up.carrier)
            phones.append(phone)
            listeners[_join(up, phone, "4242", event.id)] = phone
        on = up.on(event.id)
        assert {on[pid] for pid in listeners} == {"edge-a", "edge-b"}, on
        time.sleep(3.0)
        now = time.monotonic()
        for pid, phone in listeners.items():
            heard = _heard_since(phone, now - 2.0)
            assert tone_level(heard, SPEAKER_HZ) > 0.5, f"{pid} did not hear the speaker"

        # *1 from a listener on the edge without the speaker; the line opens; a listener
        # on the speaker's edge hears the question.
        speaker_edge = on[speaker_id]
        asker_id = next(pid for pid in listeners if on[pid] != speaker_edge)
        hearer_id = next(pid for pid in listeners if on[pid] == speaker_edge)
        asker, hearer = listeners[asker_id], listeners[hearer_id]
        asker.press("*1")
        queue = wait_until(lambda: up.live(event.id)["queue"], 5, "the queue entry")
        assert queue[0]["participant_id"] == asker_id
        speaker.sending = False
        asker.voice = tone(QUESTION_HZ)
        opened = up.origin.api(
            "POST", f"/api/events/{event.id}/actions",
            json={"action": "open_line", "participant_id": asker_id},
        )  # fmt: skip
        assert opened.status_code == 200, opened.text
        time.sleep(3.0)
        heard = _heard_since(hearer, time.monotonic() - 2.0)
        assert tone_level(heard, QUESTION_HZ) > 0.5, "the open line was not heard"
        speaker.sending = True

        # The edge without the speaker dies; its place in the rotation goes with it.
        dead = up.edges[asker_edge := on[asker_id]]
        survivor = "edge-a" if asker_edge == "edge-b" else "edge-b"
        dead.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: up.in_service() == {up.hosts[survivor].address}, 30, "out of rotation")
        late = ProxiedPhone(up.proxy.host, up.carrier)
        phones.append(late)
        late_id = _join(up, late, "4242", event.id)
        assert late_id.endswith(f"@{survivor}")
        time.sleep(3.0)
        for pid in [*(p for p in listeners if on[p] == survivor), late_id]:
            phone = late if pid == late_id else listeners[pid]
            heard = _heard_since(phone, time.monotonic() - 2.0)
            assert tone_level(heard, SPEAKER_HZ) > 0.5, f"{pid} stopped hearing"
        assert hearer.heard.longest_gap(since=killed) < 0.5
    finally:
        for phone in phones:
            phone.hang_up()


SPEAKER_LINE, SPEAKER_PROXY_PORT = "+19135550999", 5070


def _speaker_proxy(up: Cluster, edge: str, tmp: Path) -> Proxy:
    """A second proxy on the proxy's host: the edge and the origin, the origin given last
    (ties go to it), and the speaker line sent to the origin."""
    host = up.proxy.host
    origin, edge_host = up.hosts["origin"].address, up.hosts[edge].address
    workdir, log_path = tmp / "speaker-proxy", tmp / "speaker-proxy.log"
    process = subprocess.Popen(
        host.command(
            sys.executable, "-m", "callbridge", "proxy",
            "--listen", f"{host.address}:{SPEAKER_PROXY_PORT}",
            f"--node={edge_host}:{SIP_PORT}", f"--node={origin}:{SIP_PORT}",
            f"--speaker-node={origin}:{SIP_PORT}", "--speaker-line", SPEAKER_LINE,
            "--carrier", f"{up.carrier}/32", "--workdir", str(workdir),
            "--probe-interval", "3", "--invite-timeout", "3",
        ),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Proxy(host, process, workdir, log_path)


def test_a_speaker_on_the_speaker_line_outlives_an_edge(cluster: Cluster, tmp_path: Path) -> None:
    up = cluster
    # The test before killed one edge; the other serves here (either, run alone).
    edge = next(name for name, node in up.edges.items() if node.process.poll() is None)
    proxy = _speaker_proxy(up, edge, tmp_path)
    phones: list[ProxiedPhone] = []
    try:
        addresses = {up.hosts[edge].address, up.hosts["origin"].address}

        def in_service() -> bool:
            if proxy.process.poll() is not None:
                raise AssertionError(proxy.log()[-3000:])
            view = dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", proxy.rpc("dispatcher.list")))
            return {u.split(":")[1] for u, f in view.items() if f.startswith("A")} == addresses

        wait_until(in_service, 20, "the speaker proxy's nodes in service", proxy.log)
        event = up.origin.create_event(
            passcode="5151",
            dial_in=[
                {"label": "International", "number": DID},
                {"label": "Speakers", "number": SPEAKER_LINE},
            ],
        )
        assert event.speaker_passcode is not None
        assert up.origin.api("POST", f"/api/events/{event.id}/start").status_code == 200

        def dial(number: str, code: str) -> tuple[str, ProxiedPhone]:
            phone = ProxiedPhone(up.proxy.host, up.carrier, number, SPEAKER_PROXY_PORT)
            phones.append(phone)
            return _join(up, phone, code, event.id), phone

        # A tie goes to the node listed last: the origin, which then holds more calls.
        hearer_id, hearer = dial(DID, "5151")
        assert "@" not in hearer_id, hearer_id  # an edge's caller is "id@edge"
        # The speaker line goes to the origin all the same; by load, the edge was next.
        speaker_id, speaker = dial(SPEAKER_LINE, event.speaker_passcode)
        speaker.voice = tone(SPEAKER_HZ)
        assert "@" not in speaker_id, speaker_id
        doomed_id, doomed = dial(DID, "5151")
        assert doomed_id.endswith(f"@{edge}"), doomed_id
        wait_until(
            lambda: tone_level(_heard_since(doomed, time.monotonic() - 1.0), SPEAKER_HZ) > 0.5,
            10, "the edge's listener hearing the speaker",
        )  # fmt: skip

        up.edges[edge].process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        doomed.hang_up(bye=False)  # its call died with the edge
        lost = wait_until(lambda: up.live(event.id)["lost"], 15, "the edge's callers lost")
        assert [(c["participant_id"], c["node"]) for c in lost] == [(doomed_id, edge)]
        assert time.monotonic() - killed > 1.0
        heard = _heard_since(hearer, killed)
        assert tone_level(heard, SPEAKER_HZ) > 0.5, "the speaker fell silent with the edge"
        assert hearer.heard.longest_gap(since=killed) < 0.5
        on = up.on(event.id)
        assert on.keys() == {hearer_id, speaker_id}, on
    finally:
        for phone in phones:
            phone.hang_up()
        stop_tree(proxy.process)
