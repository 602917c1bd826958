"""A `callbridge serve --cache` for the cache tier's tests: Varnish in front, hitch for HTTPS."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callbridge.edge.varnish import default_workdir, origin_socket
from callbridge.store import layout
from tests.telephony.conftest import (
    RunningServer,
    free_port,
    need,
    register_for_webcast,
    start_server,
)

# The origin's access log (uvicorn) names every request that reached it.
_ORIGIN_REQUEST = re.compile(r'"GET (/webcast/\d+/[^ ]+) HTTP/1\.1" (\d{3})')


def self_signed(folder: Path) -> Path:
    """A certificate and its key for 127.0.0.1, in one PEM file as hitch reads it."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    both = folder / "tls.pem"
    both.write_text(cert.read_text() + key.read_text())
    both.chmod(0o600)
    return both


def origin_requests(server: RunningServer, prefix: str) -> Counter[str]:
    """Requests for paths starting with ``prefix`` that reached the origin, by path."""
    found = _ORIGIN_REQUEST.findall(server.log())
    return Counter(path for path, _ in found if path.startswith(prefix))


class CachedServer:
    """The running server, with the cache's HTTP and HTTPS addresses and the origin's log."""

    def __init__(self, server: RunningServer, https_url: str, origin_port: int) -> None:
        self.server = server
        self.http_url = server.http_url
        self.https_url = https_url
        self.origin_port = origin_port  # on 127.0.0.1, behind the tier
        # Where the tier itself reaches the origin (web/forwarded.py): only there is it the tier.
        cache = layout.cache_dir(server.data_dir)
        workdir = default_workdir(("127.0.0.1", server.http_port), cache)
        self.origin_socket = origin_socket(workdir.resolve())[0]

    def origin_requests(self, prefix: str) -> Counter[str]:
        """Requests for paths starting with ``prefix`` that reached the origin, by path."""
        return Counter(
            path
            for path, _ in _ORIGIN_REQUEST.findall(self.server.log())
            if path.startswith(prefix)
        )

    def register(self, event_id: int, name: str) -> str:
        """Register for the webcast through the cache, as a browser does; the Cookie to send."""
        with httpx.Client(base_url=self.http_url, timeout=10) as client:
            return f"cb_wc_{event_id}={register_for_webcast(client, event_id, name)}"


@pytest.fixture(scope="package")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachedServer]:
    need("varnishd")
    need("hitch")
    tmp = tmp_path_factory.mktemp("cached")
    pem = self_signed(tmp)
    tls_port, origin_port = free_port(), free_port()
    with start_server(
        tmp,
        "--cache",
        "--origin-port",
        str(origin_port),
        "--tls-listen",
        f"127.0.0.1:{tls_port}",
        "--tls-cert",
        str(pem),
    ) as server:
        yield CachedServer(server, f"https://127.0.0.1:{tls_port}", origin_port)
