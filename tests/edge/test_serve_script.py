"""`serve --cache`: the README's cached set-up, started and stopped as a user does.

`scripts/serve --cache` is `callbridge serve --cache` after the install
steps (tests/test_readme.py runs `scripts/serve` itself); this starts the
command directly, so the test does not reinstall the package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.telephony.conftest import free_port, need


def _varnishd_on(port: int) -> bool:
    found = subprocess.run(["pgrep", "-af", "varnishd"], capture_output=True, text=True).stdout
    return f"http=127.0.0.1:{port}" in found


def test_serve_with_the_cache_in_front_and_stop_it(tmp_path: Path) -> None:
    need("varnishd")
    port, origin = free_port(), free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "callbridge", "serve", "--cache", "--port", str(port),
            "--origin-port", str(origin), "--sip-port", "0", "--data-dir", str(tmp_path / "var"),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "CALLBRIDGE_DB": f"sqlite:///{tmp_path / 'cb.sqlite3'}"},
        start_new_session=True,
    )  # fmt: skip
    try:
        answer = None
        for _ in range(600):
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/events", timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            subprocess.run(["sleep", "0.2"])
        assert answer is not None and answer.status_code == 200, log.read_text()[-3000:]
        assert "x-varnish" in answer.headers  # the cache answers on --port
        direct = httpx.get(f"http://127.0.0.1:{origin}/events", timeout=5)
        assert direct.status_code == 200 and "x-varnish" not in direct.headers
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # Stopping serve stops its cache too.
    for _ in range(50):
        if not _varnishd_on(port):
            break
        subprocess.run(["sleep", "0.2"])
    assert not _varnishd_on(port)
