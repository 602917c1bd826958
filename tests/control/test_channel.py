"""The control channel end to end: a real bridge behind a Unix socket, the web's client before it.

The bridge here is the media plane's own ``Bridge`` (SIP on a free port, the
mixer clock, the webcast packager), not a stand-in; only its process is
shared with the test, so the test can watch both ends of the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from callbridge.bridge import metrics as metrics_read
from callbridge.bridge.control import (
    Action,
    BridgeError,
    BridgeUnavailable,
    LiveView,
    ParticipantState,
    ParticipantView,
    Role,
)
from callbridge.bridge.service import Bridge, BridgeConfig
from callbridge.bridge.views import Row
from callbridge.control.client import RemoteBridge
from callbridge.control.server import ControlServer
from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.store.audience import Audience
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.web import metrics
from tests.telephony.conftest import event_spec


@dataclass
class Channel:
    bridge: Bridge
    server: ControlServer
    remote: RemoteBridge
    events: EventStore

    def create_event(self) -> EventRecord:
        return self.events.create(event_spec())


@contextlib.asynccontextmanager
async def open_channel(tmp_path: Path, database: Database) -> AsyncIterator[Channel]:
    events = EventStore(database)
    bridge = Bridge(
        BridgeConfig(
            sip_port=0,
            rtp_port_min=41000,
            rtp_port_max=41099,
            webcasts=layout.webcasts(tmp_path),
            recordings=layout.recordings(tmp_path),
        ),
        events,
        CallLog(database),
    )
    await bridge.start()
    server = ControlServer(bridge, layout.control_socket(tmp_path))
    bridge.on_playlist = server.playlist_updated
    bridge.on_changed = server.view_changed
    await server.start()
    remote = RemoteBridge(server.path, timeout=5)
    link = asyncio.create_task(remote.run())
    assert await remote.wait_connected(5)
    try:
        yield Channel(bridge, server, remote, events)
    finally:
        await remote.close()
        link.cancel()
        await server.close()
        await bridge.stop()


Scenario = Callable[[Channel], Awaitable[None]]


@pytest.fixture
def run(tmp_path: Path, sqlite_database: Database) -> Callable[[Scenario], None]:
    """Run a scenario against a fresh channel on its own event loop."""

    def run_scenario(scenario: Scenario) -> None:
        async def main() -> None:
            async with open_channel(tmp_path, sqlite_database) as channel:
                await scenario(channel)

        asyncio.run(main())

    return run_scenario


def test_the_socket_is_the_owners_alone(run: Callable[[Scenario], None]) -> None:
    async def scenario(channel: Channel) -> None:
        assert channel.server.path.stat().st_mode & 0o777 == 0o600
        assert channel.server.path.parent.stat().st_mode & 0o777 == 0o700

    run(scenario)


async def moderating(channel: Channel) -> None:
    event = channel.create_event()
    view = await channel.remote.live(event.id)
    assert (view.event_id, view.state, view.participants) == (event.id, "idle", [])
    assert (await channel.remote.stats()).legs == 0
    assert await channel.remote.participants(event.id) == []
    await channel.remote.start_call(event.id)
    assert channel.events.get(event.id).state is EventState.LIVE
    assert (await channel.remote.live(event.id)).state == "live"
    locked = await channel.remote.act(event.id, Action(action="lock"), "dana")
    assert locked.locked
    # What the bridge refuses reaches the web as the bridge's own reason.
    with pytest.raises(BridgeError, match="not on the call"):
        await channel.remote.act(event.id, Action(action="mute", participant_id="p9"), "dana")
    with pytest.raises(BridgeError, match="cannot start again"):
        await channel.remote.start_call(event.id)
    # Call me needs an outbound trunk: without one the web is told so, nothing is dialled.
    jane = {"listener_id": 1, "name": "Jane Smith", "firm": None, "email": None}
    with pytest.raises(BridgeError, match="outbound trunk"):
        await channel.remote.call_me(event.id, jane, "+19135550100", "127.0.0.1")
    with pytest.raises(BridgeError, match="outbound trunk"):
        await channel.remote.call_me_switch(event.id, False, "dana")
    await channel.remote.end_call(event.id)
    assert channel.events.get(event.id).state is EventState.ENDED
    # A guard holding many identities is counted a slice at a time, the loop free between.
    guard = channel.bridge.lobby.guard
    for n in range(3 * metrics_read.SLICE):
        guard.record_failure(f"user:+1212555{n:04d}", channel.bridge.media.now())
    pauses: list[int] = []

    async def pause() -> None:
        pauses.append(1)
        await asyncio.sleep(0)

    found = await metrics_read.read(channel.bridge, "", "standalone", False, 0.0, pause)
    assert found.guard_identities["watched"] == 3 * metrics_read.SLICE
    assert len(pauses) >= 2  # three slices, the loop free between them


def test_the_console_reads_and_moderates_through_the_channel(
    run: Callable[[Scenario], None],
) -> None:
    run(moderating)


async def blocking_reload(channel: Channel) -> None:
    event = channel.create_event()
    await channel.remote.start_call(event.id)
    for _ in range(50):
        stream = channel.remote.live_stream(event.id)
        if stream is not None:
            break
        await asyncio.sleep(0.02)
    assert stream is not None
    # Held until the media plane has packaged part 2 of segment 0, then answered.
    text = await stream.wait_for(0, 2, timeout=5)
    assert "#EXT-X-PART:" in text
    assert text.count("#EXT-X-PART:") >= 3
    published = channel.bridge.live_playlists()[event.id]
    assert published is not None and published.startswith("#EXTM3U")
    # The metrics, as a scrape reads them through the channel (web.metrics).
    scrape = await render(channel)
    parts = _sample(scrape, "callbridge_webcast_parts_total")
    assert parts >= 3
    assert _sample(scrape, "callbridge_webcast_blocking_reload_waits_total") >= 1
    assert _sample(scrape, 'callbridge_calls{state="live"}') == 1
    assert _sample(scrape, 'callbridge_tick_lateness_seconds_count{clock="conference"}') > 0
    assert _sample(scrape, "callbridge_media_up") == 1
    assert await channel.remote.health() == {"draining": False}
    await channel.remote.end_call(event.id)
    # The last playlist (with EXT-X-ENDLIST) went out, and the stream is gone.
    assert channel.remote.live_stream(event.id) is None
    # Counters outlive the call: a counter never goes down.
    after = await render(channel)
    assert _sample(after, "callbridge_webcast_parts_total") >= parts
    assert _sample(after, "callbridge_webcast_blocking_reload_waits_total") >= 1
    assert _sample(after, 'callbridge_calls{state="live"}') == 0


async def render(channel: Channel) -> str:
    state = SimpleNamespace(
        bridge=channel.remote,
        audience=Audience(channel.events.database),
        settings=SimpleNamespace(data_dir=channel.server.path.parent.parent),
    )
    return (await metrics.render(state)).decode()


def _sample(text: str, series: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(series + " ")]
    assert len(found) == 1, (series, text)
    return float(found[0].rsplit(" ", 1)[1])


def test_blocking_playlist_reloads_wait_in_the_web_process(
    run: Callable[[Scenario], None],
) -> None:
    run(blocking_reload)


async def pushing(channel: Channel) -> None:
    event = channel.create_event()
    async with channel.remote.watch_live(event.id) as feed:
        assert feed.view is not None and feed.view.state == "idle"
        requests_made = channel.remote._connection._next_id
        # The call changes in the media plane (as a key press or a caller would):
        # the web learns of it without asking.
        await channel.bridge.start_call(event.id)
        seen = feed.version
        while feed.view.state != "live":
            moved = await feed.wait(seen, timeout=5)
            assert moved != seen, "no view was pushed"
            seen = moved
        await channel.bridge.act(event.id, Action(action="lock"), "dana")
        while not feed.view.locked:
            moved = await feed.wait(seen, timeout=5)
            assert moved != seen, "no view was pushed"
            seen = moved
        assert channel.remote._connection._next_id == requests_made
    # Nobody in this process watches any more: the media plane stops pushing to it.
    for _ in range(100):
        if not any(peer.watching for peer in channel.server._peers):
            break
        await asyncio.sleep(0.02)
    assert not any(peer.watching for peer in channel.server._peers)
    await channel.bridge.end_call(event.id)


def test_the_consoles_view_is_pushed_when_the_call_changes(
    run: Callable[[Scenario], None],
) -> None:
    run(pushing)


async def reconnecting(channel: Channel) -> None:
    await channel.server.close()
    for _ in range(100):
        if not channel.remote._connected.is_set():
            break
        await asyncio.sleep(0.02)
    with pytest.raises(BridgeUnavailable):
        await channel.remote.stats()
    await channel.server.start()
    assert await channel.remote.wait_connected(5)
    assert (await channel.remote.stats()).legs == 0


def test_the_web_reconnects_when_the_media_plane_comes_back(
    run: Callable[[Scenario], None],
) -> None:
    run(reconnecting)


def test_the_consoles_view_is_the_bridges_own_row_for_row() -> None:
    """Rows encoded once and joined give the same view as the bridge builds in full."""

    class Roster:
        def __init__(self) -> None:
            now = datetime.now(UTC)
            self.people = [
                Row(
                    id=f"p{i}",
                    role=Role.SPEAKER if i < 2 else Role.LISTENER,
                    caller_id=f"Analyst {i}",
                    name="Mark Chen" if i == 0 else None,
                    joined_at=now,
                    left_at=None,
                    state=ParticipantState.CONNECTED,
                    muted=False,
                    talking=False,
                    line_open=False,
                )
                for i in range(50)
            ]

        def live_parts(self, event_id: int) -> tuple[LiveView, list[Row]]:
            view = LiveView(
                event_id=event_id,
                state="live",
                locked=True,
                participants=[],
                queue=[],
                listeners_by_channel={"phone": 48, "web": 0},
                version=3,
            )
            return view, self.people

    async def scenario() -> None:
        roster = Roster()
        server = ControlServer(roster, Path("unused.sock"))  # type: ignore[arg-type]
        for change in range(3):
            roster.people[change] = replace(roster.people[change], talking=True)
            roster.people[10 + change] = replace(roster.people[10 + change], muted=True)
            server._live_cache.clear()
            seen = LiveView.model_validate_json(server._live(7))
            view, people = roster.live_parts(7)
            view.participants = [ParticipantView.of(p) for p in people]
            assert seen == view

    asyncio.run(scenario())
