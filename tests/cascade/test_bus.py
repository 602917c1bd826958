"""The bus on a real PostgreSQL: messages reach the nodes they name, and only those; what a
client of the database without the key NOTIFYs on the channel (bare, forged, replayed, stale,
junk) is refused, counted, logged and survived. And what PostgreSQL itself cannot stop."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from callbridge.cascade.bus import CHANNEL, REJECTED_LOG_EVERY, Bus, libpq_url
from callbridge.cascade.messages import (
    EVERYONE,
    MAX_PAYLOAD,
    ORIGIN,
    CallState,
    Envelope,
    Keyed,
    Message,
    encode,
)
from callbridge.cascade.seal import KEY_BYTES, WINDOW, Stamp, seal
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres

Inbox = dict[str, list[tuple[str, Message]]]
KEY = bytes(range(KEY_BYTES))


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
        name: Bus(
            url, name, name == "origin", lambda s, m, name=name: got[name].append((s, m)), key=KEY
        )
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


async def _intruder(url: str) -> tuple[Inbox, Bus, int]:
    """Payloads NOTIFYed on the channel by a client of the database without the key (and
    one that is sealed but old, and one sealed but junk), then a real message."""
    got: Inbox = {"origin": [], "edge-a": []}
    buses = _buses(url, got)
    for bus in buses.values():
        bus.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(b.listening.wait() for b in buses.values())), 30)
        genuine = Envelope("edge-a", ORIGIN, Keyed("p1@edge-a", "1", 1.0))
        forged = {
            "unsigned": [
                "not json",
                encode(genuine),  # a well-formed envelope, bare
                '{"v": 1, "pad": "' + "x" * (MAX_PAYLOAD + 50) + '"}',
            ],
            # Sealed with a key of one's own, or with ours but altered.
            "forged": [
                seal(bytes(KEY_BYTES), Stamp("0" * 16, 1, time.time()), encode(genuine)),
                seal(KEY, Stamp("0" * 16, 2, time.time()), encode(genuine)).replace('"1"', '"*"'),
            ],
            # A node's message of long ago.
            "stale": [seal(KEY, Stamp("0" * 16, 3, time.time() - 3 * WINDOW), encode(genuine))],
            # Sealed by a node, but no message.
            "rejected": [seal(KEY, Stamp("0" * 16, 4, time.time()), "not json")],
        }
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as other:
            await other.execute(f"LISTEN {CHANNEL}")
            for payloads in forged.values():
                for payload in payloads:
                    await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            # PostgreSQL itself refuses a payload of 8000 bytes or more.
            with pytest.raises(psycopg.Error, match="payload string too long"):
                await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "x" * 8000))
            # A real message reaches the origin once; played again, it is refused.
            buses["edge-a"].send(ORIGIN, Keyed("p1@edge-a", "1", 1.0))
            await _until(lambda: got["origin"])
            heard = [n.payload async for n in _notifies(other)]
            sealed_by_a = f":{buses['edge-a']._stamper.incarnation}:"
            real = [p for p in heard if sealed_by_a in p[:90]]
            assert len(real) == 1, heard
            await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, real[0]))
        await _until(lambda: buses["origin"].stats.replayed)
        return got, buses["origin"], sum(len(p) for p in forged.values())
    finally:
        for bus in buses.values():
            await bus.stop()


async def _notifies(connection: psycopg.AsyncConnection[Any]) -> AsyncIterator[psycopg.Notify]:
    """What ``connection`` has heard so far, waiting no longer than a moment for more."""
    async for notify in connection.notifies(timeout=0.5):
        yield notify


def test_what_a_node_did_not_seal_now_is_refused_counted_and_logged(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="callbridge.cascade.bus")
    got, origin, sent = asyncio.run(_intruder(url))
    # The node still hears the real message after the forgeries, and only once.
    assert got["origin"] == [("edge-a", Keyed("p1@edge-a", "1", 1.0))]
    counted = {k: origin.stats.counters()[k] for k in ("unsigned", "forged", "stale", "rejected")}
    assert counted == {"unsigned": 3, "forged": 2, "stale": 1, "rejected": 1}
    assert sum(counted.values()) == sent
    assert origin.stats.replayed == 1
    refused = [r for r in caplog.records if "refused a payload" in r.getMessage()]
    messages = [r.getMessage() for r in refused]
    for reason in ("unsigned", "forged", "stale", "replayed", "rejected"):
        assert any(f"({reason}, 1 so far)" in m for m in messages), (reason, messages)
    assert any("clocks in step" in m for m in messages), messages
    # The first refusal of each reason is a warning; the rest wait for every
    # REJECTED_LOG_EVERY-th (each listening node logs its own).
    warned = [r.getMessage() for r in refused if r.levelno == logging.WARNING]
    assert len(warned) == 2 * 5, warned


def test_a_flood_of_forgeries_is_logged_as_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="callbridge.cascade.bus")
    bus = Bus("postgresql://u@h/db", "origin", True, lambda s, m: None, key=KEY)
    for n in range(2 * REJECTED_LOG_EVERY + 1):
        bus._deliver(f"forgery {n}")
    assert bus.stats.unsigned == 2 * REJECTED_LOG_EVERY + 1
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3


def test_postgresql_cannot_keep_a_role_off_the_bus(
    postgres_server: PostgresServer | None, url: str
) -> None:
    """What the README says: EXECUTE on pg_notify can be revoked, NOTIFY and LISTEN cannot."""
    assert postgres_server is not None
    role = f"web_{os.getpid()}"
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute("REVOKE EXECUTE ON FUNCTION pg_notify(text, text) FROM PUBLIC")
        admin.execute(f"LISTEN {CHANNEL}")
        web = libpq_url(url).replace("postgres@", f"{role}@")
        with psycopg.connect(web, autocommit=True) as webapp:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                webapp.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "by the function"))
            webapp.execute(f"NOTIFY {CHANNEL}, 'by the statement'")
            webapp.execute(f"LISTEN {CHANNEL}")
        heard = [n.payload for n in admin.notifies(timeout=2, stop_after=1)]
        assert heard == ["by the statement"]
