"""The media plane's worker threads keep its nice, though its loop runs real-time."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from callbridge.media import priority


def _in_a_media_plane(policy: str) -> tuple[int, int, int] | None:
    """Raise as the media plane does; the nice of a worker thread, a plain thread, the loop."""
    priority.raise_media_priority(policy)
    if priority._worker_nice is None:
        return None
    seen: dict[str, int] = {}

    def worker() -> None:
        priority.as_media_worker()
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def plain() -> None:
        seen["plain"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    for target in (worker, plain):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    return seen["worker"], seen["plain"], os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.parametrize("policy", ["realtime", "nice"])
def test_a_worker_thread_takes_the_media_planes_nice(policy: str) -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seen = pool.apply(_in_a_media_plane, (policy,))
    if seen is None:
        pytest.skip("raising a priority needs CAP_SYS_NICE")
    worker, plain, loop = seen
    assert loop == priority.MEDIA_NICE
    assert worker == priority.MEDIA_NICE
    if policy == "realtime":
        # SCHED_RESET_ON_FORK gave the plain thread nice 0: what as_media_worker mends.
        assert plain == 0


def test_outside_the_media_plane_nothing_changes() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    priority.as_media_worker()
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def _web_nice(policy: str) -> int:
    priority.lower_web_priority(policy)
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_the_web_app_gives_way_unless_told_normal() -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        lowered = pool.apply(_web_nice, ("realtime",))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        left = pool.apply(_web_nice, ("normal",))
    assert lowered == priority.WEB_NICE
    assert left == os.getpriority(os.PRIO_PROCESS, 0)  # as the test's own process
