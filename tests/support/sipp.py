"""sipp, the SIP traffic generator, run against our server with scenarios kept in the repo."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.pcap import Timed, write_pcap

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

    @property
    def report(self) -> str:
        """The tail of sipp's screen and error log, for an assertion's message."""
        return self.output[-3000:] + self.errors[-2000:]


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


def call_in(
    target: str,
    workdir: Path,
    stream: list[Timed],
    *,
    stay_ms: int | None = None,
    timeout: float = 45,
    **options: Any,
) -> SippResult:
    """Callers who dial ``target`` and play ``stream`` (keys, speech: ``tests.support.pcap``).

    With ``stay_ms`` each caller hangs up that long after the answer
    (dial_in.xml); without it, it waits for the server to hang up (hung_up_on.xml).
    ``options`` go to :func:`run_sipp` (``calls``, ``background_check``, ...).
    """
    pcap = workdir / "caller.pcap"
    write_pcap(pcap, stream)
    if stay_ms is None:
        scenario, hold = "hung_up_on.xml", {"bye_timeout_ms": "30000"}
    else:
        scenario, hold = "dial_in.xml", {"stay_ms": str(stay_ms)}
    substitutions = {"pcap": str(pcap), **hold}
    return run_sipp(
        SCENARIOS / scenario,
        target,
        workdir,
        substitutions=substitutions,
        timeout=timeout,
        **options,
    )
