"""The bus on a real PostgreSQL: messages reach the nodes they name, and only those; junk
NOTIFYed on the channel by another client is refused, logged and survived."""

from __future__ import annotations

import asyncio
import logging
import os

import psycopg
import pytest

from callbridge.cascade.bus import CHANNEL, Bus, libpq_url
from callbridge.cascade.messages import EVERYONE, MAX_PAYLOAD, ORIGIN, CallState, Keyed, Message
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres

Inbox = dict[str, list[tuple[str, Message]]]


@pytest.fixture
def url(postgres_server: PostgresServer | None) -> str:
    if postgres_server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed")
        pytest.skip("PostgreSQL is not installed")
    return postgres_server.create_database()


def test_libpq_url() -> None:
    assert libpq_url("postgresql+psycopg://u@h:5/db") == "postgresql://u@h:5/db"
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        libpq_url("sqlite:///x")


def _buses(url: str, got: Inbox) -> dict[str, Bus]:
    return {
        name: Bus(url, name, name == "origin", lambda s, m, name=name: got[name].append((s, m)))
        for name in got
    }


async def _until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)


async def _exchange(url: str) -> tuple[Inbox, int]:
    got: Inbox = {"origin": [], "edge-a": [], "edge-b": []}
    buses = _buses(url, got)
    for bus in buses.values():
        bus.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(b.listening.wait() for b in buses.values())), 30)
        buses["edge-a"].send(ORIGIN, Keyed("p1@edge-a", "1", 1.0))
        buses["origin"].send(EVERYONE, CallState(1, "live"))
        buses["origin"].send("edge-b", CallState(2, "ended"))
        # Junk on the channel is dropped and counted, never delivered.
        await buses["edge-b"]._outbox.put('{"v": 1, "junk": true}')
        await _until(lambda: len(got["edge-b"]) == 2 and buses["origin"].stats.rejected)
        return got, buses["origin"].stats.rejected
    finally:
        for bus in buses.values():
            await bus.stop()


def test_messages_reach_whom_they_name(url: str) -> None:
    got, rejected = asyncio.run(_exchange(url))
    assert got["origin"] == [("edge-a", Keyed("p1@edge-a", "1", 1.0))]
    assert got["edge-a"] == [("origin", CallState(1, "live"))]
    assert got["edge-b"] == [("origin", CallState(1, "live")), ("origin", CallState(2, "ended"))]
    assert rejected == 1


async def _reconnect(url: str) -> tuple[Inbox, int]:
    got: Inbox = {"origin": [], "edge-a": []}
    buses = _buses(url, got)
    for bus in buses.values():
        bus.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(b.listening.wait() for b in buses.values())), 30)
        # The server drops every connection of the bus (a restart, a failover).
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        await _until(lambda: not buses["origin"].listening.is_set(), 5)
        await asyncio.wait_for(buses["origin"].listening.wait(), 30)
        for _ in range(40):  # the sender finds its connection gone on its first try
            buses["edge-a"].send(ORIGIN, Keyed("p1@edge-a", "*", 2.0))
            await asyncio.sleep(0.1)
            if got["origin"]:
                break
        return got, buses["origin"].stats.reconnects
    finally:
        for bus in buses.values():
            await bus.stop()


def test_the_bus_reconnects(url: str) -> None:
    got, reconnects = asyncio.run(_reconnect(url))
    assert got["origin"] and got["origin"][0] == ("edge-a", Keyed("p1@edge-a", "*", 2.0))
    assert reconnects >= 1


async def _intruder(url: str) -> tuple[Inbox, Bus]:
    """Payloads NOTIFYed on the channel by another client of the database, then a real one."""
    got: Inbox = {"origin": [], "edge-a": []}
    buses = _buses(url, got)
    for bus in buses.values():
        bus.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(b.listening.wait() for b in buses.values())), 30)
        junk = [
            "not json",
            '{"v": 1, "from": "edge-a", "to": "@origin", "kind": "reboot"}',
            '{"v": 99, "from": "edge-a", "to": "@origin", "kind": "keyed"}',
            # Under PostgreSQL's 8000 bytes, over the bus's own limit.
            '{"v": 1, "pad": "' + "x" * (MAX_PAYLOAD + 50) + '"}',
        ]
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as other:
            for payload in junk:
                await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            # PostgreSQL itself refuses a payload of 8000 bytes or more.
            with pytest.raises(psycopg.Error, match="payload string too long"):
                await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "x" * 8000))
        buses["edge-a"].send(ORIGIN, Keyed("p1@edge-a", "1", 1.0))
        await _until(lambda: got["origin"] and buses["origin"].stats.rejected == len(junk))
        return got, buses["origin"]
    finally:
        for bus in buses.values():
            await bus.stop()


def test_junk_on_the_channel_is_refused_and_logged_and_the_node_goes_on(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="callbridge.cascade.bus")
    got, origin = asyncio.run(_intruder(url))
    assert origin.stats.rejected == 4
    # The node still hears the real message after the junk.
    assert got["origin"] == [("edge-a", Keyed("p1@edge-a", "1", 1.0))]
    refused = [r for r in caplog.records if "refused a payload" in r.getMessage()]
    origin_refused = [r.getMessage() for r in refused][:8]
    assert any("over the limit" in m for m in origin_refused), origin_refused
    assert any("not JSON" in m for m in origin_refused), origin_refused
    # The first refusal is a warning; the rest wait for every REJECTED_LOG_EVERY-th.
    assert [r.levelno for r in refused].count(logging.WARNING) == 2  # one per listening node
