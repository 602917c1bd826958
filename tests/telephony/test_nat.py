"""A bridge behind a NAT, and a trunk that sends keys as tones, with real callers.

The bridge (``callbridge serve``) runs in a private network namespace
behind a gateway namespace that port-forwards SIP, HTTP and the RTP range
(nftables DNAT) and masquerades what the bridge sends (SNAT); the callers
are in this namespace, the public side, with no route to the private
address. The bridge is told its public address (``--external-ip``) and one
caller address that must keep the private one (``--local-net``, as if that
caller were on the bridge's LAN): that caller's SDP answer names the
private address, so none of its RTP (its keys included) reaches the bridge,
while the others join and are heard both ways.

The same bridge listens for in-band keys (``--inband-dtmf``): a sipp caller
whose pcap holds its passcode as tones, and no RFC 4733 at all, joins. (One
bridge for both saves a server start; in-band keys through the NAT are no
harder than RFC 4733 through it.)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from callbridge.store.db import Database
from callbridge.store.users import UserStore
from tests.support.baresip import Baresip, rms_windows, write_wav
from tests.support.netns import NatSite, behind_nat
from tests.support.nodes import start_node
from tests.support.pcap import Timed, inband_stream, passcode_stream, write_pcap
from tests.support.procs import stop_tree
from tests.support.sipp import SippResult, run_sipp
from tests.support.wait import wait_until
from tests.telephony.conftest import DID, RunningServer, _up, need

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "nat_dial_in.xml"
SIP, HTTP, RTP = 5060, 8000, (30000, 30039)

pytestmark = [pytest.mark.sipp, pytest.mark.baresip]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatSite, RunningServer]]:
    need("sipp")
    need("baresip")
    tmp = tmp_path_factory.mktemp("nat")
    with behind_nat(tcp=(HTTP,), udp=(SIP,), udp_range=RTP) as nat:
        database = Database(f"sqlite:///{tmp / 'callbridge.sqlite3'}")
        database.upgrade()
        users = UserStore(database)
        users.add("operator", "correct horse battery")
        node = start_node(
            database.url, database, users.issue_token("operator"), tmp / "var", tmp / "server.log",
            http=(nat.private.address, HTTP), sip=(nat.private.address, SIP),
            rtp_ports=f"{RTP[0]}-{RTP[1]}", media_timeout=8,
            extra=(
                "--trunk", f"{nat.callers[0].rsplit('.', 1)[0]}.0/24",
                "--external-ip", nat.public_ip,
                "--local-net", f"{nat.callers[1]}/32",
                "--inband-dtmf",
            ),
            prefix=nat.private.command(),
        )  # fmt: skip
        # The test reaches the bridge's API as anyone outside does: through the gateway.
        server = dataclasses.replace(node, http_url=f"http://{nat.public_ip}:{HTTP}")
        try:
            server.wait_for(lambda: _up(server), timeout=120)
            yield nat, server
        finally:
            stop_tree(node.process)
            database.dispose()


def _sipp(
    callers: ThreadPoolExecutor,
    nat: NatSite,
    tmp: Path,
    who: str,
    caller: str,
    answer_ip: str,
    stream: list[Timed],
    stay_ms: int,
) -> Future[SippResult]:
    """sipp from ``caller`` (an address on the public side), checking the answer names
    ``answer_ip``; in a thread."""
    tmp.mkdir(parents=True, exist_ok=True)
    pcap = tmp / "stream.pcap"
    write_pcap(pcap, stream)
    substitutions = {
        "pcap": str(pcap),
        "stay_ms": str(stay_ms),
        "who": who,
        "answer_ip": re.escape(answer_ip),
    }
    return callers.submit(
        run_sipp, SCENARIO, f"{nat.public_ip}:{SIP}", tmp, local_ip=caller, timeout=30,
        substitutions=substitutions, service=DID[1:],
    )  # fmt: skip


def test_behind_a_nat_callers_are_heard_both_ways_and_a_local_net_keeps_the_private_address(
    site: tuple[NatSite, RunningServer], tmp_path: Path
) -> None:
    nat, server = site
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    with ThreadPoolExecutor(2, thread_name_prefix="sipp") as callers:
        # A caller on a --local-net address is told the private address (sipp
        # checks the answer's c= line), so its keys (RFC 4733) go nowhere.
        local = _sipp(
            callers, nat, tmp_path / "local", "lan", nat.callers[1], nat.private.address,
            passcode_stream([event.passcode + "#"]), stay_ms=3000,
        )  # fmt: skip
        # A gateway that keys in-band: the passcode as tones, no RFC 4733 at all.
        tones = _sipp(
            callers, nat, tmp_path / "tones", "tones", nat.callers[0], nat.public_ip,
            inband_stream(event.passcode + "#", tone_s=0.08, gap_s=0.08, after=1.0), stay_ms=3000,
        )  # fmt: skip
        # The speaker: baresip on the public side, its microphone a 1 kHz tone.
        t = np.arange(8000 * 20) / 8000
        voice = tmp_path / "voice.wav"
        write_wav(voice, (6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))
        with Baresip(tmp_path / "baresip", voice, host=nat.callers[0]) as phone:
            phone.dial(f"sip:{DID[1:]}@{nat.public_ip}:{SIP}", seconds=6)
            # Answered, into the welcome prompt: the keys barge in.
            wait_until(lambda: "Call established" in phone.log.read_text(errors="replace"), 15,
                       "baresip's call")  # fmt: skip
            phone.send_digits(event.speaker_passcode, gap=0.15)
            # Its audio reaches the mix: the console sees it talk.
            server.wait_for(
                lambda: any(
                    p["role"] == "speaker" and p["talking"] for p in server.participants(event.id)
                ),
                timeout=15,
            )
            phone.wait(timeout=30)
            heard, rate = phone.heard()
        # The bridge's audio reached the caller through the NAT: the welcome prompt.
        levels = rms_windows(heard, rate)
        assert levels.max() > 500, levels[:40]
        for caller in (local, tones):
            result = caller.result(timeout=40)
            assert result.ok, result.report
    joined = {(p["caller_id"], p["role"]) for p in server.participants(event.id, include_left=True)}
    assert joined == {("analyst", "speaker"), ("tones", "listener")}, joined
    # Every tone was heard as a key, and nothing else was (the speaker's 1 kHz
    # voice, its RFC 4733 keys): no key came both ways.
    stats = server.stats()
    assert stats["dtmf_inband"] == len(event.passcode + "#"), stats
    assert stats["dtmf_merged"] == 0, stats
