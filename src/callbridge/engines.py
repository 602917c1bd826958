"""Run the field's engines (Varnish, hitch, Kamailio) as children of a callbridge command.

``callbridge cache`` and ``callbridge proxy`` (and ``serve --cache``) each start
one or two of them and stay in front: the children die with their parent
(``PR_SET_PDEATHSIG``), keep a umask others can read (their control sockets and
compiled VCL are opened by the engines' own users and tools), and stop on
SIGTERM or SIGINT. Should one exit on its own, the others are stopped and its
status is returned, so the supervisor above sees the failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from callbridge.children import die_with_parent

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


def program(name: str) -> str | None:
    """The engine's path, looking in the sbin folders too (they are not on every PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _child_setup() -> None:
    os.umask(0o022)
    die_with_parent(signal.SIGTERM)


def run_engines(
    what: str, commands: Sequence[Sequence[str]], started: Callable[[], None] = lambda: None
) -> int:
    """Run ``commands`` until SIGTERM/SIGINT (0) or until one exits (its status, at least 1).

    ``what`` names them in the log; ``started`` is called once all are running.
    """
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            log.info("%s: %s", what, " ".join(command))
            processes.append(subprocess.Popen(list(command), preexec_fn=_child_setup))
        started()
        while not stopping:
            for process in processes:
                if process.poll() is not None:
                    log.error("%s: %s exited (%s)", what, process.args, process.returncode)
                    return process.returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for process in reversed(processes):
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
