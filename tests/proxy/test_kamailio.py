"""One SIP proxy's files and command line (proxy.kamailio); the script parsed by real Kamailio.

And `callbridge proxy` on loopback: the carrier allow-list is the proxy's,
so a stranger's INVITE gets Kamailio's 403 before any node hears of it.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callbridge.cli.main import main
from callbridge.proxy.kamailio import (
    DEFAULT_CFG,
    Carrier,
    Proxy,
    carriers_list,
    check_command,
    dispatcher_list,
    kamailio_command,
    local_cfg,
    parse_carrier,
    parse_node,
    parse_speaker_line,
    route_key,
    route_token,
    write_files,
)
from callbridge.proxy.run import ProxyUnavailable, check, kamailio_program
from tests.support.sipp import SCENARIOS, run_sipp
from tests.telephony.conftest import free_port, need

CARRIERS = (
    Carrier(ipaddress.ip_network("192.0.2.0/24")),
    Carrier(ipaddress.ip_network("2001:db8::/32"), 5060),
)


def _proxy(tmp: Path, **changes: object) -> Proxy:
    fields: dict[str, object] = {
        "listen": ("10.0.0.3", 5060),
        "nodes": (("10.0.0.4", 5060), ("10.0.0.5", 5070)),
        "carriers": CARRIERS,
        "workdir": tmp / "proxy",
        **changes,
    }
    return Proxy(**fields)  # type: ignore[arg-type]


def test_nodes_and_carriers_as_kamailio_reads_them(tmp_path: Path) -> None:
    proxy = _proxy(tmp_path)
    assert dispatcher_list(proxy) == (
        "1 sip:10.0.0.4:5060 0 0 duid=node1\n1 sip:10.0.0.5:5070 0 0 duid=node2\n"
    )
    # Any port for the first carrier, 5060 only for the second.
    assert carriers_list(proxy) == "1 192.0.2.0 24 0\n1 2001:db8:: 32 5060\n"
    local = local_cfg(proxy)
    assert "listen=udp:10.0.0.3:5060\n" in local
    assert "#!define PROBE_INTERVAL 5\n" in local and "#!define INVITE_TIMEOUT 2000\n" in local
    assert f'"list_file", "{tmp_path / "proxy" / "dispatcher.list"}"' in local
    # Five seconds between probes, two misses, a two-second timeout: out within 12 s.
    assert proxy.failover_bound() == 12.0
    command = kamailio_command(proxy, "/usr/sbin/kamailio")
    assert command[:3] == ["/usr/sbin/kamailio", "-DD", "-E"]
    assert str(tmp_path / "proxy" / "kamailio.cfg") in command


def test_node_addresses() -> None:
    assert parse_node("10.0.0.4") == ("10.0.0.4", 5060)
    assert parse_node("10.0.0.4:5070") == ("10.0.0.4", 5070)
    assert parse_node("[2001:db8::4]") == ("2001:db8::4", 5060)
    assert parse_node("[2001:db8::4]:5070") == ("2001:db8::4", 5070)
    with pytest.raises(ValueError):
        parse_node("10.0.0.4:99999")


def test_carrier_networks_and_ports() -> None:
    assert parse_carrier("192.0.2.0/24") == Carrier(ipaddress.ip_network("192.0.2.0/24"))
    assert parse_carrier("192.0.2.7") == Carrier(ipaddress.ip_network("192.0.2.7/32"))
    assert parse_carrier("192.0.2.0/24:5060") == Carrier(ipaddress.ip_network("192.0.2.0/24"), 5060)
    assert parse_carrier("2001:db8::/32:5080").port == 5080
    assert str(parse_carrier("2001:db8::/32:5080")) == "2001:db8::/32:5080"
    for bad in ("192.0.2.0/24:0", "192.0.2.0/24:x", "192.0.2.0/24:", "192.0.2.1/24", "carrier"):
        with pytest.raises(ValueError):
            parse_carrier(bad)


def test_the_route_key_is_made_once_and_kept_from_its_owner_only(tmp_path: Path) -> None:
    proxy = _proxy(tmp_path)
    write_files(proxy)
    key = route_key(proxy.workdir)
    secret = proxy.workdir / "callbridge-secret.cfg"
    assert f'#!define ROUTE_KEY "{key}"' in secret.read_text()
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (proxy.workdir / "route.key").stat().st_mode & 0o777 == 0o600
    # A restart keeps it: the calls in progress keep their mark.
    write_files(proxy)
    assert route_key(proxy.workdir) == key and f'"{key}"' in secret.read_text()
    assert route_token(key, "a@b") != route_token(key, "a@c") and len(route_token(key, "a")) == 32
    (proxy.workdir / "route.key").write_text("not a key\n")
    with pytest.raises(ValueError, match="not a route key"):
        write_files(proxy)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"nodes": ()}, "at least one bridge node"),
        ({"carriers": ()}, "at least one carrier"),
        ({"nodes": (("10.0.0.4", 5060), ("10.0.0.4", 5060))}, "named twice"),
        ({"nodes": (("node.example", 5060),)}, "does not appear to be an IPv4 or IPv6"),
        ({"probe_interval": 0}, "an interval of 1-300 s"),
        ({"invite_timeout": 60.0}, "0.5-30 s"),
        ({"listen": ("0.0.0.0", 5060)}, "one address that carriers and nodes reach"),
    ],
)
def test_a_proxy_that_cannot_work_is_refused(
    tmp_path: Path, changes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        _proxy(tmp_path, **changes)


def test_the_command_refuses_a_node_named_by_host_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["proxy", "--node", "bridge.example", "--carrier", "192.0.2.0/24"]
    assert main(argv) == 2
    assert "bridge.example" in capsys.readouterr().err


@pytest.mark.parametrize("speakers", [False, True])
def test_kamailio_accepts_the_configuration(tmp_path: Path, speakers: bool) -> None:
    need("kamailio")
    lines = {"speaker_nodes": (("10.0.0.4", 5060),), "speaker_lines": ("15551230000",)}
    proxy = _proxy(tmp_path, listen=("127.0.0.1", free_port()), **(lines if speakers else {}))
    write_files(proxy)
    done = subprocess.run(check_command(proxy), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]


def test_speaker_lines_go_to_the_speaker_nodes_set(tmp_path: Path) -> None:
    proxy = _proxy(
        tmp_path,
        speaker_nodes=(("10.0.0.4", 5060),),
        speaker_lines=(parse_speaker_line("+15551230000"), parse_speaker_line("4420790000")),
    )
    assert dispatcher_list(proxy).endswith("2 sip:10.0.0.4:5060 0 0 duid=speaker1\n")
    assert '#!define SPEAKER_LINES "^[+]?(15551230000|4420790000)$"\n' in local_cfg(proxy)
    assert "SPEAKER_LINES" not in local_cfg(_proxy(tmp_path))
    for bad in ("+1 555 123", "sip:1555", "12", ""):
        with pytest.raises(ValueError, match="speaker line"):
            parse_speaker_line(bad)
    with pytest.raises(ValueError, match="not one of the --node"):
        _proxy(tmp_path, speaker_nodes=(("10.0.0.9", 5060),), speaker_lines=("15551230000",))
    with pytest.raises(ValueError, match="come together"):
        _proxy(tmp_path, speaker_lines=("15551230000",))


def test_a_script_kamailio_refuses_is_reported_with_its_complaint(tmp_path: Path) -> None:
    need("kamailio")
    broken = tmp_path / "broken.cfg"
    broken.write_text(DEFAULT_CFG.read_text().replace("if (!t_relay()) {", "if (!t_relay() {"))
    proxy = _proxy(tmp_path, listen=("127.0.0.1", free_port()), cfg=broken)
    write_files(proxy)
    with pytest.raises(ProxyUnavailable, match="refuses the configuration"):
        check(proxy, kamailio_program())


def test_a_stranger_gets_the_proxys_403(tmp_path: Path) -> None:
    """From 127.0.0.1, neither the carrier network 127.0.0.2/32 nor the node: refused; and
    from the carrier's address on a port other than its configured one, refused too."""
    need("kamailio")
    need("sipp")
    port, node_port, carrier_port = free_port(), free_port(), free_port()
    log = tmp_path / "proxy.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "callbridge", "proxy",
            "--listen", f"127.0.0.1:{port}", "--node", f"127.0.0.3:{node_port}",
            "--carrier", f"127.0.0.2/32:{carrier_port}", "--workdir", str(tmp_path / "proxy"),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Listening on" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        result = run_sipp(SCENARIOS / "refused.xml", f"127.0.0.1:{port}", tmp_path, timeout=10)
        assert result.ok, result.output[-2000:] + result.errors[-2000:]
        deadline = time.monotonic() + 5  # the proxy logs it as it answers
        while "refused INVITE from 127.0.0.1" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        result = run_sipp(
            SCENARIOS / "refused.xml", f"127.0.0.1:{port}", elsewhere, local_ip="127.0.0.2",
            timeout=10,
        )  # fmt: skip
        assert result.ok, result.report
        assert "refused INVITE from 127.0.0.2" in log.read_text(errors="replace")
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
    # Kamailio went with it, and left no socket behind.
    assert not (tmp_path / "proxy" / "kamailio_ctl").exists()
