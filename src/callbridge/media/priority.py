"""The media plane's share of the CPU: its event loop first, its worker threads next.

On a busy host the web app (or a flood it is answering) would otherwise hold
the core a tick is due on. Nice -10 weighs the media plane ten to one, but a
woken task still waits for the running one's slice (1-3 ms seen under a login
flood); a real-time policy for the event loop's thread runs the tick at once.

The worker threads (database, chunk writer, webcast packager, the default
executor) stay out of the real-time class, so a long encode cannot take a
core from everything else, and so do the processes the media plane starts
(SCHED_RESET_ON_FORK; the transcript and caption workers). But that flag also
resets a new thread's nice to 0, and a worker at nice 0 that holds the GIL
when the host is busy waits its turn behind every other process while the
loop waits for the GIL: ticks 100 ms late under load. So each worker thread
takes the media plane's nice again when it starts (``as_media_worker``).
The kernel's real-time throttling keeps a runaway loop from the rest.

The web app gives way too, even where the media plane may not raise its own
priority (no CAP_SYS_NICE, as in a default container): lowering one's own
needs no privilege. Nice 5 weighs it a third of a normal task, so a login
flood's argon2 checks and a crowd's requests wait for a due tick.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

MEDIA_NICE = -10
MEDIA_RT_PRIORITY = 10
WEB_NICE = 5

# The nice that the media plane's worker threads take; None outside the media
# plane, or where it could not be raised.
_worker_nice: int | None = None


def raise_media_priority(policy: str) -> None:
    """Raise the calling process's priority as ``policy`` says, as far as the system allows.

    Call once, first thing in the media plane's process, from the thread that
    runs the event loop, before any other thread starts.
    """
    global _worker_nice
    if policy == "normal":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, MEDIA_NICE)
    except PermissionError:
        log.info("the media plane runs at normal priority (raising it needs CAP_SYS_NICE)")
        return
    _worker_nice = MEDIA_NICE
    if policy != "realtime":
        return
    try:
        os.sched_setscheduler(
            0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(MEDIA_RT_PRIORITY)
        )
    except OSError as error:
        log.info("the media clock runs at nice %d, not real-time: %s", MEDIA_NICE, error)
    else:
        log.info("the media clock's thread runs real-time (SCHED_RR %d)", MEDIA_RT_PRIORITY)


def as_media_worker() -> None:
    """Give the calling thread the media plane's nice; a no-op in any other process.

    Call first thing in a thread the media plane starts (an executor's
    ``initializer``, a thread's ``run``).
    """
    if _worker_nice is None:
        return
    try:
        # PRIO_PROCESS with 0 is the calling thread on Linux.
        os.setpriority(os.PRIO_PROCESS, 0, _worker_nice)
    except OSError as error:
        log.debug("a media worker thread keeps its priority: %s", error)


def lower_web_priority(policy: str) -> None:
    """Lower the calling process (the web app) to ``WEB_NICE`` unless ``policy`` is normal.

    Call once, first thing in the web app's process, before any thread starts.
    """
    if policy == "normal":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, WEB_NICE)
    except OSError as error:
        log.info("the web app runs at normal priority: %s", error)
