"""Guessing is slowed and refused per caller; a budget per number slows rotating caller IDs
and a spoofer cannot lock a listed speaker out; strangers may not call; malformed SIP
stops nothing."""

from __future__ import annotations

import socket
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from callbridge.store.models import CallLogRow
from tests.support.pcap import passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, SippResult, run_sipp
from tests.telephony.conftest import DID, RunningServer, need, start_server

TORTURE = Path(__file__).resolve().parent.parent / "sip" / "data" / "torture"


@pytest.fixture(scope="module")
def guard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Four wrong codes refuse an identity; two slow it (2 s, then 4 s before each answer).
    with start_server(tmp_path_factory.mktemp("guard"), "--max-passcode-failures", "4") as s:
        yield s


@pytest.fixture(scope="module")
def budget_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Small budgets, to see the mechanism in seconds: a number takes 4 wrong codes
    # (2 before answers slow), then one every 0.5 s; the trunk 6, then one every
    # 0.5 s. Two wrong codes refuse an identity (one slows it: 2 s, then 4 s).
    with start_server(
        tmp_path_factory.mktemp("budget"),
        "--max-passcode-failures",
        "2",
        "--guess-budget",
        "4:0.5",
        "--trunk-guess-budget",
        "6:0.5",
    ) as s:
        yield s


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Only a carrier's network may call; the tests call from loopback.
    with start_server(tmp_path_factory.mktemp("closed"), "--trunk", "192.0.2.0/24") as s:
        yield s


GUESSER = "+12125550101"
SPEAKER = "+12125550199"


def _guess(
    server: RunningServer, tmp_path: Path, codes: list[str], display: str, header: str
) -> tuple[float, datetime]:
    """One guesser's call keying ``codes``; returns how long the keys take and when it began."""
    stream = passcode_stream(codes, between_codes=5.0)
    pcap = tmp_path / f"guess-{len(codes)}-{display.split()[0]}.pcap"
    write_pcap(pcap, stream)
    began = datetime.now(UTC)
    call = run_sipp(
        SCENARIOS / "guesser.xml",
        server.sip_target,
        tmp_path,
        substitutions={
            "pcap": str(pcap),
            "bye_timeout_ms": "60000",
            "display": display,
            "from_user": GUESSER,
            "extra_header": header,
        },
        timeout=80,
    )
    assert call.ok, call.output[-2000:] + call.errors[-2000:]
    return stream[-1].at, began


@pytest.mark.sipp
def test_a_guesser_is_counted_by_identity_slowed_refused_and_the_speaker_still_joins(
    guard_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    server = guard_server
    event = server.create_event()
    wrong = ("1" if not event.passcode.startswith("1") else "2") * 7 + "#"
    # Every call from the same trunk address, and the display name changes each time.
    _guess(server, tmp_path, [wrong] * 3, "Analyst One", "Subject: guess")
    keys_took, began = _guess(server, tmp_path, [wrong], "Jane Doe CEO", "Subject: again")
    refused = run_sipp(
        SCENARIOS / "guesser_refused.xml",
        server.sip_target,
        tmp_path,
        substitutions={"display": "Someone Else", "from_user": GUESSER},
        timeout=20,
    )
    assert refused.ok, refused.output[-2000:] + refused.errors[-2000:]

    # The operator hears of it: the audit trail and the console.
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    alerts = [e for e in audit if e["kind"] in ("guesser_slowed", "guesser_refused")]
    assert [(e["kind"], e["caller_id"], e["detail"]["failures"]) for e in alerts] == [
        ("guesser_slowed", f"user:{GUESSER}", 2),
        ("guesser_refused", f"user:{GUESSER}", 4),
    ]
    assert alerts[0]["detail"]["delay_s"] == 2.0
    # The fourth code's answer waited (4 s) before the refusal: the guesser was slowed.
    refused_at = datetime.fromisoformat(alerts[1]["at"])
    assert (refused_at - began).total_seconds() >= keys_took + 4.0 - 0.2
    live = server.api("GET", f"/api/events/{event.id}/live").json()
    assert [(a["standing"], a["identity"]) for a in live["alerts"]] == [
        ("refused", f"user:{GUESSER}"),
        ("slowed", f"user:{GUESSER}"),
    ]
    assert live["alerts"][0]["until"] is not None

    # The trunk is not blocked: the speaker, from the same address and even
    # with the guesser's From (the trunk asserts who they are), still joins.
    pcap = tmp_path / "speaker.pcap"
    write_pcap(pcap, passcode_stream([event.speaker_passcode]))
    speaker = run_sipp(
        SCENARIOS / "named_dial_in.xml",
        server.sip_target,
        tmp_path,
        substitutions={
            "pcap": str(pcap),
            "stay_ms": "6000",
            "display": "Analyst One",
            "from_user": GUESSER,
            "extra_header": f"P-Asserted-Identity: <sip:{SPEAKER}@carrier.example>",
        },
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert speaker.ok, speaker.output[-2000:] + speaker.errors[-2000:]
    assert speaker.background and speaker.background[0]["role"] == "speaker"


def _failures_answered(server: RunningServer, since: datetime) -> list[tuple[datetime, str]]:
    """When each wrong code since ``since`` was answered, and whose it was (the call log)."""
    with server.database.session() as session:
        rows = session.execute(
            select(CallLogRow.at, CallLogRow.caller_id)
            .where(CallLogRow.kind == "passcode_failed", CallLogRow.at >= since)
            .order_by(CallLogRow.at)
        ).all()
    return [(at, caller or "") for at, caller in rows]


def _calls(
    server: RunningServer,
    tmp_path: Path,
    name: str,
    code: str,
    from_user: str,
    calls: int,
    *,
    header: str = "Subject: budget",
    stay_ms: int,
    watch: Any = None,
) -> SippResult:
    """``calls`` calls at once, each keying ``code`` once and staying ``stay_ms``."""
    workdir = tmp_path / name
    workdir.mkdir()
    pcap = workdir / "code.pcap"
    # Silence after the code keeps RTP flowing while the call waits (--media-timeout).
    silence = np.zeros(160, np.int16)
    write_pcap(pcap, passcode_stream([code], tone=silence, talk_after=stay_ms / 1000))
    return run_sipp(
        SCENARIOS / "named_dial_in.xml",
        server.sip_target,
        workdir,
        calls=calls,
        rate=50,
        limit=calls,
        substitutions={
            "pcap": str(pcap),
            "stay_ms": str(stay_ms),
            "display": "Analyst",
            "from_user": from_user,
            "extra_header": header,
        },
        timeout=60,
        background_check=watch,
    )


@pytest.mark.sipp
def test_rotating_caller_ids_meet_the_numbers_budget_and_a_listed_speaker_still_joins(
    budget_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    server = budget_server
    event = server.create_event(speakers=[{"name": "Mark Chen", "phone": SPEAKER}])
    wrong = ("1" if not event.passcode.startswith("1") else "2") * 7 + "#"

    # Fourteen calls, each from a new caller ID (+1212555 and the call's
    # number), key a wrong code within a fraction of a second; once the first
    # answers come, a listener keys the listener code, which the release prints.
    began = datetime.now(UTC)
    with ThreadPoolExecutor(1) as pool:
        attacking = pool.submit(
            _calls, server, tmp_path, "rotating", wrong, "+1212555[call_number]", 14, stay_ms=9000
        )
        server.wait_for(lambda: _failures_answered(server, began), timeout=30)
        listener = _calls(
            server,
            tmp_path,
            "listener",
            event.passcode + "#",
            "+12125559876",
            1,
            stay_ms=6000,
            watch=lambda: server.participants(event.id),
        )
        attack = attacking.result()
    assert attack.ok, attack.report
    assert listener.ok and listener.background, listener.report
    answered = server.wait_for(
        lambda: (found := _failures_answered(server, began)) and len(found) >= 14 and found
    )
    assert len({caller for _, caller in answered}) == 14  # no caller ID twice
    # The answers slowed down: 4 at once at most, then one per 0.5 s (without
    # the budget all of them come within the calls' spread, a fraction of a second).
    times = [(at - answered[0][0]).total_seconds() for at, _ in answered]
    assert times[-1] >= (14 - 4) * 0.5 - 0.1, times
    # Within any window: 4 + its length / 0.5, give or take one answer whose
    # wake-up the machine's load made late.
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 4 + (times[j] - start) / 0.5 + 1, times
    # The listener did not queue behind the guesses: that code is no secret.
    joined = datetime.fromisoformat(listener.background[0]["joined_at"])
    assert joined < answered[-1][0], (joined, answered[-1][0])

    # The moderator hears of it: the console and the audit trail.
    number = f"number:{DID}"
    live = server.wait_for(
        lambda: (
            (view := server.api("GET", f"/api/events/{event.id}/live").json())
            and any(a["identity"] == number for a in view["alerts"])
            and view
        )
    )
    budget_alerts = [a for a in live["alerts"] if a["identity"] == number]
    assert {a["standing"] for a in budget_alerts} == {"slowed"}
    assert max(a["delay_s"] for a in budget_alerts) == 0.5  # empty: one answer per interval
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    budgets = {e["caller_id"] for e in audit if e["detail"].get("budget")}
    assert budgets == {number, "trunk:127.0.0.0/8"}

    # Six calls spoofing the listed speaker's number key wrong codes: that
    # identity is refused anywhere else ...
    spoofed_at = datetime.now(UTC)
    # (Calls keyed after two of them were answered wait 4 s: a slowed identity.)
    spoof = _calls(server, tmp_path, "spoof", wrong, SPEAKER, 6, stay_ms=9000)
    assert spoof.ok, spoof.report
    server.wait_for(lambda: len(_failures_answered(server, spoofed_at)) >= 6)
    elsewhere = run_sipp(
        SCENARIOS / "guesser_refused.xml",
        server.sip_target,
        tmp_path,
        service="19135550124",  # a number no event of theirs is on
        substitutions={"display": "Mark Chen", "from_user": SPEAKER},
        timeout=20,
    )
    assert elsewhere.ok, elsewhere.report
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    spoofed = [e for e in audit if e["caller_id"] == f"user:{SPEAKER}"]
    assert spoofed and all(e["kind"] == "guesser_slowed" for e in spoofed), spoofed
    assert spoofed[-1]["detail"]["vouched"] == "listed_phone"

    # ... but the speaker, whose number the trunk asserts, still joins on the
    # event's number with the right code (slowed, never refused).
    speaker = _calls(
        server,
        tmp_path,
        "speaker",
        event.speaker_passcode,
        SPEAKER,
        1,
        header=f"P-Asserted-Identity: <sip:{SPEAKER}@carrier.example>",
        stay_ms=10000,
        watch=lambda: server.participants(event.id),
    )
    assert speaker.ok, speaker.report
    assert speaker.background, server.log()[-3000:]
    assert [(p["role"], p["name"]) for p in speaker.background] == [("speaker", "Mark Chen")]


@pytest.mark.sipp
def test_invites_from_outside_the_trunk_networks_get_403(
    closed_server: RunningServer, tmp_path: Path
) -> None:
    need("sipp")
    refused = run_sipp(SCENARIOS / "refused.xml", closed_server.sip_target, tmp_path, timeout=20)
    assert refused.ok, refused.output[-2000:] + refused.errors[-2000:]
    assert "not an allowed trunk address" in closed_server.log()


def _exchange(sock: socket.socket, data: bytes, port: int, call_id: bytes, wait: float) -> bytes:
    """Send, then return the first final answer for ``call_id`` (b"" if none came).

    Other answers (a 100 Trying, an earlier case's retransmitted error
    response) are skipped.
    """
    sock.sendto(data, ("127.0.0.1", port))
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            answer = sock.recv(65535)
        except TimeoutError:
            break
        if b"Call-ID: " + call_id + b"\r\n" in answer and not answer.startswith(b"SIP/2.0 100"):
            return answer
    return b""


def test_torture_messages_over_udp_never_stop_the_server(server: RunningServer) -> None:
    expected: dict[str, str] = tomllib.loads((TORTURE / "expected.toml").read_text())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for n, (name, outcome) in enumerate(sorted(expected.items()), start=100):
            data = (TORTURE / f"{name}.sip").read_bytes().replace(b"{n}", str(n).encode())
            call_id = f"torture-{n}@127.0.0.1".encode()
            answer = _exchange(
                sock, data, server.sip_port, call_id, 0.4 if outcome == "drop" else 2
            )
            if outcome == "drop":
                assert answer == b"", name
            else:
                assert answer.split(b" ")[1:2] == [outcome.encode()], (name, answer[:80])
            ping = (TORTURE / "plain_options.sip").read_bytes().replace(b"{n}", f"p{n}".encode())
            pong = _exchange(sock, ping, server.sip_port, f"torture-p{n}@127.0.0.1".encode(), 2)
            assert pong.startswith(b"SIP/2.0 200"), name
    assert server.process.poll() is None
