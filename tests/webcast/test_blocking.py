"""PlaylistWaiter: blocking reload on the event loop, woken by the packager's thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from callbridge.webcast.blocking import PlaylistTimeout, PlaylistWaiter
from callbridge.webcast.live import LiveWebcast
from callbridge.webcast.playlist import BlockingRequestError, RenderedPlaylist, parse, render
from tests.webcast.conftest import tone
from tests.webcast.test_playlist import live


class FakeSource:
    def __init__(self) -> None:
        self.current: RenderedPlaylist | None = None

    def snapshot(self) -> RenderedPlaylist | None:
        return self.current

    def publish(self, complete: int, in_progress: int) -> None:
        playlist = live(complete, in_progress)
        self.current = RenderedPlaylist(playlist, render(playlist))


async def _wait_returns_when_the_part_lands() -> None:
    source = FakeSource()
    source.publish(3, 1)
    waiter = PlaylistWaiter(source)
    assert "part13.0.m4s" in await waiter.wait_for(13, 0, timeout=1)
    task = asyncio.create_task(waiter.wait_for(13, 2, timeout=5))
    await asyncio.sleep(0.05)
    assert not task.done() and waiter.waiting == 1
    source.publish(3, 2)  # 13.1: not yet
    waiter.notify()
    await asyncio.sleep(0.05)
    assert not task.done()
    source.publish(3, 3)
    waiter.notify()
    text = await asyncio.wait_for(task, 1)
    assert 'URI="part13.2.m4s"' in text and waiter.waiting == 0


async def _timeout_and_bad_requests() -> None:
    source = FakeSource()
    waiter = PlaylistWaiter(source)
    with pytest.raises(PlaylistTimeout):
        await waiter.wait_for(None, None, timeout=0.05)  # no playlist yet
    source.publish(3, 1)
    with pytest.raises(PlaylistTimeout):
        await waiter.wait_for(13, 1, timeout=0.05)
    with pytest.raises(BlockingRequestError) as caught:
        await waiter.wait_for(20, 0, timeout=1)
    assert caught.value.status == 400
    with pytest.raises(BlockingRequestError):
        await waiter.wait_for(None, 3, timeout=1)


async def _waiters_are_capped() -> None:
    source = FakeSource()
    source.publish(3, 1)
    waiter = PlaylistWaiter(source, max_waiters=1)
    first = asyncio.create_task(waiter.wait_for(13, 1, timeout=1))
    await asyncio.sleep(0.01)
    with pytest.raises(BlockingRequestError) as caught:
        await waiter.wait_for(13, 1, timeout=1)
    assert caught.value.status == 503
    first.cancel()


async def _attached_to_a_live_webcast(tmp_path: Path) -> None:
    webcast = LiveWebcast(tmp_path)
    waiter = PlaylistWaiter(webcast)
    waiter.attach(webcast)

    def feed() -> None:
        for n in range(16 * 9):
            webcast.push(n, tone(n, 0))

    threading.Thread(target=feed).start()
    first = await waiter.wait_for(None, None, timeout=10)  # waits for the first segment
    msn = parse(first).media_sequence  # numbered from the wall clock
    assert f"seg{msn}.m4s" in first
    text = await waiter.wait_for(msn + 1, 1, timeout=10)
    assert f'URI="part{msn + 1}.1.m4s"' in text
    await asyncio.to_thread(webcast.close, 30)
    assert (await waiter.wait_for(msn + 1, 5, timeout=1)).endswith("#EXT-X-ENDLIST\n")


def test_wait_returns_when_the_part_lands() -> None:
    asyncio.run(_wait_returns_when_the_part_lands())


def test_timeout_and_bad_requests() -> None:
    asyncio.run(_timeout_and_bad_requests())


def test_waiters_are_capped() -> None:
    asyncio.run(_waiters_are_capped())


def test_attached_to_a_live_webcast(tmp_path: Path) -> None:
    asyncio.run(_attached_to_a_live_webcast(tmp_path))
