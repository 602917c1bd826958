"""sipp, the SIP traffic generator, run against our server with scenarios kept in the repo."""

from __future__ import annotations

import shutil
import subprocess
import threading
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


@dataclass(frozen=True)
class Caller:
    """Who the trunk says is calling (named_dial_in.xml): the From's display name and
    user, and one more header (a P-Asserted-Identity, say)."""

    display: str
    from_user: str
    extra_header: str = ""


def call_in(
    target: str,
    workdir: Path,
    stream: list[Timed],
    *,
    stay_ms: int | None = None,
    wait_ms: int = 30_000,
    caller: Caller | None = None,
    name: str = "caller",
    timeout: float = 45,
    **options: Any,
) -> SippResult:
    """One caller (or ``calls`` of them) who dials ``target`` and plays ``stream``
    (keys, speech: ``tests.support.pcap``); the one way the tests dial in with sipp.

    With ``stay_ms`` each caller hangs up that long after the answer
    (dial_in.xml; named_dial_in.xml when ``caller`` says who calls); without it,
    it waits up to ``wait_ms`` for the server to hang up (hung_up_on.xml). The
    stream is written to ``workdir/{name}.pcap``. ``options`` go to
    :func:`run_sipp` (``calls``, ``service``, ``background_check``, ...).
    """
    pcap = workdir / f"{name}.pcap"
    write_pcap(pcap, stream)
    substitutions = {"pcap": str(pcap)}
    if stay_ms is None:
        if caller is not None:
            raise ValueError("a named caller hangs up itself: give stay_ms")
        scenario = "hung_up_on.xml"
        substitutions["bye_timeout_ms"] = str(wait_ms)
    else:
        scenario = "dial_in.xml" if caller is None else "named_dial_in.xml"
        substitutions["stay_ms"] = str(stay_ms)
    if caller is not None:
        substitutions.update(
            display=caller.display, from_user=caller.from_user, extra_header=caller.extra_header
        )
    return run_sipp(
        SCENARIOS / scenario,
        target,
        workdir,
        substitutions=substitutions,
        timeout=timeout,
        **options,
    )


class Dialing:
    """``call_in`` in a thread, for a test that does something else while the caller is on.

    ``result`` waits for sipp to finish and returns its result.
    """

    def __init__(self, target: str, workdir: Path, stream: list[Timed], **options: Any) -> None:
        self._result: SippResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(target, workdir, stream), kwargs=options, daemon=True
        )
        self._thread.start()

    def _run(self, target: str, workdir: Path, stream: list[Timed], **options: Any) -> None:
        try:
            self._result = call_in(target, workdir, stream, **options)
        except BaseException as error:  # handed to the test by result()
            self._error = error

    def result(self, timeout: float = 60) -> SippResult:
        self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise AssertionError(f"sipp was still running after {timeout} s")
        return self._result
