"""A cache node's files and command lines (edge.varnish); the VCL compiled by real Varnish."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from callbridge.edge.varnish import (
    CacheNode,
    backend_vcl,
    hitch_conf,
    parse_address,
    varnishd_command,
    write_files,
)
from callbridge.web.media import replay_edge_ttl
from tests.telephony.conftest import need


def test_addresses() -> None:
    assert parse_address("10.0.0.5:8000") == ("10.0.0.5", 8000)
    assert parse_address("443", "0.0.0.0") == ("0.0.0.0", 443)
    assert parse_address("[::1]:8443") == ("::1", 8443)
    for bad in ("host:", "1.2.3.4:70000", "x", ":0"):
        with pytest.raises(ValueError, match="not an address"):
            parse_address(bad)


def test_backend_names_an_address() -> None:
    text = backend_vcl(("10.0.0.5", 8000))
    assert '.host = "10.0.0.5";' in text and '.port = "8000";' in text
    with pytest.raises(ValueError):
        backend_vcl(("origin.example", 8000))  # Varnish resolves once: an address only


def test_origins_with_a_standby_are_probed_in_a_fallback_director() -> None:
    text = backend_vcl(("10.0.0.5", 8000), standbys=(("10.0.0.6", 8000),))
    assert "import directors;" in text and '.url = "/healthz";' in text
    assert text.index("backend origin {") < text.index("backend origin_1 {")
    assert "origins.add_backend(origin);\n    origins.add_backend(origin_1);" in text
    assert "origins_retry.add_backend(origin_1);\n    origins_retry.add_backend(origin);" in text
    with pytest.raises(ValueError, match="socket"):
        backend_vcl(("127.0.0.1", 1), Path("/run/o.sock"), (("127.0.0.1", 2),))


def test_https_needs_a_certificate_and_a_proxy_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="certificate"):
        CacheNode(("127.0.0.1", 80), ("127.0.0.1", 81), tmp_path, tls_listen=("0.0.0.0", 443))
    node = CacheNode(
        ("127.0.0.1", 80),
        ("127.0.0.1", 81),
        tmp_path,
        tls_listen=("0.0.0.0", 443),
        tls_pem=tmp_path / "tls.pem",
        proxy_port=6086,
    )
    conf = hitch_conf(node)
    assert 'frontend = "[0.0.0.0]:443"' in conf and 'backend = "[127.0.0.1]:6086"' in conf
    assert "write-proxy-v2 = on" in conf and '"h2, http/1.1"' in conf
    command = varnishd_command(node)
    assert "tls=127.0.0.1:6086,PROXY" in command and "http=127.0.0.1:80" in command
    assert "feature=+http2" in command


@pytest.mark.parametrize("standbys", [(), (("127.0.0.1", 8002),)], ids=["one", "failover"])
def test_the_vcl_compiles(tmp_path: Path, standbys: tuple[tuple[str, int], ...]) -> None:
    need("varnishd")
    node = CacheNode(("127.0.0.1", 8000), ("127.0.0.1", 8001), tmp_path / "node", standbys)
    write_files(node)
    compiled = subprocess.run(
        ["varnishd", "-C", "-j", "none", "-n", str(tmp_path / "n"),
         "-f", str(node.workdir / "callbridge.vcl"),
         "-p", f"vcl_path={node.workdir}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr[-2000:]


def test_a_replay_is_never_kept_past_its_window() -> None:
    last_day = date(2026, 11, 30)  # through that day in New York: ends 05:00 UTC on Dec 1
    zone = "America/New_York"
    early = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert replay_edge_ttl(last_day, zone, early, 3600) == 3600
    late = datetime(2026, 12, 1, 4, 59, 30, tzinfo=UTC)
    assert replay_edge_ttl(last_day, zone, late, 3600) == 30
    assert replay_edge_ttl(last_day, zone, late + timedelta(minutes=1), 3600) == 0
    assert replay_edge_ttl(None, zone, early, 3600) == 0
