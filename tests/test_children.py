"""A child started with ``die_with_parent`` goes when its parent is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.wait import wait_until

PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from callbridge.children import die_with_parent

    async def main():
        child = await asyncio.create_subprocess_exec(
            "sleep", "600", preexec_fn=die_with_parent
        )
        print(child.pid, flush=True)
        await child.wait()

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_goes_with_its_killed_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, env={**os.environ}
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_until(lambda: not _alive(child), 10, "the child gone")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
