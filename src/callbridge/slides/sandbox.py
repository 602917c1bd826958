"""Rendering a deck in a child process that its limits can stop (the parent's side).

PDFium renders whatever the PDF asks for: a 10 KB file whose page draws one
1 MB stream 1,500 times needs 3 GB and 14 s; a form drawn inside a form,
nine deep, took 24 GB before the kernel stopped it. In the web process
that is the web app's memory. So ``render_in_child`` runs the renderer
(``render.py``) as a fresh, isolated interpreter, one per upload, that
limits its own memory, processor time and file sizes before it reads the
PDF, and waits for it at most ``wall_seconds`` (then kills it). Whatever
stops it becomes a ``DeckError`` that names the page and the limit. The
child writes its answers and its errors to temporary files (capped by its
file-size limit), so nothing it prints piles up in the web process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import callbridge
from callbridge.slides.limits import DeckError, PageLimits
from callbridge.slides.render import MEMORY_EXIT, peak_kib

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderBudget:
    """What one upload's renderer may spend; the defaults are the web app's.

    Real decks stay well under these: ``bench/slides_bench.py --pages 150``
    took 3.7 s of processor time (17 s in all on a busy 2-core host) and
    peaked at 42 MiB; a page with a 24-megapixel photograph peaks at 160 MiB.
    """

    memory_bytes: int = 1 << 30
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    file_bytes: int = 64 << 20  # one slide's PNG; the noisiest allowed page is ~15 MB


@dataclass(frozen=True)
class Rendered:
    """A deck the child rendered: each image's size, and what the child spent."""

    sizes: list[tuple[int, int]]
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int


def _size(count: int) -> str:
    return f"{count / 2**30:g} GiB" if count >= 2**30 else f"{count / 2**20:g} MiB"


# An isolated interpreter (-I: no PYTHON* variables, no user site, not the working
# folder) that finds callbridge where this process found it.
_CHILD = (
    "import sys; sys.path.insert(0, {src!r}); "
    "from callbridge.slides.render import main; sys.exit(main(sys.argv))"
)


def _command(job: dict[str, Any]) -> list[str]:
    src = str(Path(callbridge.__file__).resolve().parent.parent)
    return [sys.executable, "-I", "-c", _CHILD.format(src=src), json.dumps(job)]


def _wait(child: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, Any, int]:
    """The child's exit code, resource use and peak memory seen (KiB, from /proc while it
    ran), or (None, None, peak) once ``deadline`` passes."""
    pause = 0.005
    peak = 0
    while True:
        peak = max(peak, peak_kib(child.pid))
        try:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its exit status is lost
            child.returncode = 255
            return child.returncode, None, peak
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode, usage, peak
        if time.monotonic() >= deadline:
            return None, None, peak
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _messages(said: bytes) -> list[dict[str, Any]]:
    messages = []
    for line in said.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def render_in_child(pdf: Path, out: Path, limits: PageLimits, budget: RenderBudget) -> Rendered:
    """Render ``pdf`` into ``out`` (one PNG a page) in a confined child process.

    Returns the images' sizes and what the child spent; raises ``DeckError``
    when a page breaks ``limits`` (nothing rendered) and when the child is
    stopped by ``budget`` or dies, naming the page it was on and the limit.
    ``out`` may then hold some pages: the caller throws it away.
    """
    job = {
        "pdf": str(pdf),
        "out": str(out),
        "limits": asdict(limits),
        "memory_bytes": budget.memory_bytes,
        "cpu_seconds": budget.cpu_seconds,
        "file_bytes": budget.file_bytes,
    }
    started = time.monotonic()
    with tempfile.TemporaryFile() as said, tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            _command(job), stdin=subprocess.DEVNULL, stdout=said, stderr=errors, env={}
        )
        try:
            code, usage, seen = _wait(child, started + budget.wall_seconds)
        finally:
            if child.returncode is None:  # past the wall limit, or this thread interrupted
                child.kill()
                _, usage, _ = _wait(child, math.inf)
        seconds = time.monotonic() - started
        said.seek(0)
        messages = _messages(said.read(1 << 20))
        errors.seek(-min(os.fstat(errors.fileno()).st_size, 2000), os.SEEK_END)
        tail = errors.read().decode(errors="replace")
    pages = [m["page"] for m in messages if isinstance(m.get("page"), int)]
    where = f"page {pages[-1]}" if pages else "the deck"
    # The child's own last word on its peak, else what /proc showed while it ran.
    reported = [int(m["peak_kib"]) for m in messages if isinstance(m.get("peak_kib"), int)]
    peak = max([seen, *reported]) * 1024
    cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
    log.info(
        "deck renderer: exit %s after %.2f s (%.2f s CPU, peak %d MiB), at %s",
        code, seconds, cpu, peak >> 20, where,
    )  # fmt: skip
    if code is None:
        raise DeckError(_stopped(where, f"{budget.wall_seconds:g} s"))
    if code == 0:
        for message in messages:
            if "refused" in message:
                raise DeckError(str(message["refused"]))
            if "done" in message:
                sizes = [(int(w), int(h)) for w, h in message["done"]]
                return Rendered(sizes, round(seconds, 3), round(cpu, 3), peak)
    # SIGXCPU at the soft limit, SIGKILL a second later at the hard one (a SIGKILL
    # short of it is the host's out-of-memory killer: a failure, below).
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= budget.cpu_seconds):
        limit = f"{budget.cpu_seconds} s of processor time"
    elif code in (MEMORY_EXIT, -signal.SIGABRT) or (
        code in (-signal.SIGSEGV, -signal.SIGBUS) and peak >= budget.memory_bytes // 2
    ):
        # PDFium's allocator aborts when it is refused memory (however little
        # the process holds: one allocation may ask for gigabytes); a crash at
        # half the limit or more is taken as the same.
        limit = f"{_size(budget.memory_bytes)} of memory"
    elif code == -signal.SIGXFSZ:
        limit = f"{_size(budget.file_bytes)} an image"
    else:
        log.warning("deck renderer died (%s) at %s: %s", code, where, tail)
        raise DeckError(f"{where} could not be rendered: the renderer failed ({_status(code)})")
    raise DeckError(_stopped(where, limit))


def _stopped(where: str, limit: str) -> str:
    return (
        f"{where} could not be rendered within {limit}, the most a deck may take; "
        "export it simpler (pictures flattened, fewer layers) and upload it again"
    )


def _status(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
