from __future__ import annotations

import subprocess
import sys
import textwrap


def run_with_limits(soft: int, hard: int, calls: int) -> subprocess.CompletedProcess[str]:
    """``raise_file_limit`` in a process of its own, started under the given limits."""
    code = textwrap.dedent(
        f"""
        import logging, resource
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        from callbridge.server import raise_file_limit
        print(raise_file_limit({calls}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_the_soft_file_limit_is_raised_for_two_sockets_per_call() -> None:
    # Each call's RTP socket and its RTCP one (port + 1).
    done = run_with_limits(soft=256, hard=8192, calls=2000)
    assert done.stdout.split() == ["5024", "5024"]
    assert done.stderr == ""


def test_a_hard_limit_too_low_is_used_and_said() -> None:
    done = run_with_limits(soft=256, hard=1500, calls=1000)
    assert done.stdout.split() == ["1500", "1500"]
    assert "open files are limited to 1500: fewer than 1000 calls" in done.stderr


def test_a_higher_soft_limit_is_left_alone() -> None:
    done = run_with_limits(soft=8000, hard=8192, calls=100)
    assert done.stdout.split() == ["8000", "8000"]
