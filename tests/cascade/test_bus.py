"""The bus on a real PostgreSQL: messages reach the nodes they name, and only those."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from callbridge.cascade.bus import Bus, libpq_url
from callbridge.cascade.messages import EVERYONE, ORIGIN, CallState, Keyed, Message
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
