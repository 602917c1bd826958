"""sipp, the SIP traffic generator, run against our server with scenarios kept in the repo."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).resolve().parent.parent / "telephony" / "scenarios"


@dataclass
class SippResult:
    returncode: int
    output: str
    errors: str
    background: Any = None

    @property
    def ok(self) -> bool:
        # sipp exits 0 only when every call completed its scenario.
        return self.returncode == 0


def run_sipp(
    scenario: Path,
    target: str,
    workdir: Path,
    *,
    service: str = "19135550123",
    calls: int = 1,
    rate: float = 1.0,
    limit: int | None = None,
    timeout: float = 60,
    transport: str = "u1",
    extra: list[str] | None = None,
    substitutions: dict[str, str] | None = None,
    background_check: Callable[[], Any] | None = None,
    local_ip: str = "127.0.0.1",
    prefix: tuple[str, ...] = (),
) -> SippResult:
    """Run ``scenario`` (a file in the repo, {placeholders} filled in) until done or timeout.

    ``prefix`` runs sipp under another command (``ip netns exec HOST``, a
    test host's), where it sends from ``local_ip``.
    """
    if SIPP is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    text = scenario.read_text()
    for key, value in (substitutions or {}).items():
        text = text.replace("{" + key + "}", value)
    scenario_file = workdir / scenario.name
    scenario_file.write_text(text)
    error_file = workdir / f"{scenario.stem}_errors.log"
    command = [
        *prefix,
        SIPP,
        target,
        "-sf",
        str(scenario_file),
        "-i",
        local_ip,
        "-p",
        "0",
        "-mp",
        "0",
        "-s",
        service,
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-t",
        transport,
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(error_file),
        "-max_recv_loops",
        "1000",
        *(["-l", str(limit)] if limit else []),
        *(extra or []),
    ]
    output_file = workdir / f"{scenario.stem}_output.log"
    background: Any = None
    with output_file.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + timeout + 30
        # While the calls run, the test may watch the server (e.g. its participant list).
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                break
            if background_check is not None and not background:
                background = background_check()
            time.sleep(0.25)
        process.wait()
    errors = error_file.read_text(errors="replace") if error_file.exists() else ""
    text = output_file.read_text(errors="replace")
    return SippResult(process.returncode, text, errors, background)
