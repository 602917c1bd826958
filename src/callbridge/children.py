"""Child processes that do not outlive the process that started them.

A callbridge process that is killed (SIGKILL, a crash, a host's power) cannot
stop its children itself; Linux can, when each child asks before it runs
(``PR_SET_PDEATHSIG``). Without it an orphan keeps a port its replacement
needs, or a transcription the replacement starts again: two writers of one
transcript.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent thread ends.

    Called in the child, before ``exec`` (a ``preexec_fn``) or first thing after
    ``fork``; the request survives ``exec`` of anything but a set-user-ID program.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
