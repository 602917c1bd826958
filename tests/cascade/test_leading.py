"""The lease driven on a real PostgreSQL: the active origin cut off from the store.

Two origins' lease drivers (``cascade.leading``) share one PostgreSQL; the
active one reaches it through a TCP relay the test can cut, as a partition
between that origin and the store (but not the edges) would. The standby
takes the lease with a higher epoch; the cut-off one, unable to renew, is
``LAPSED`` and still believes it may send, but an edge hearing both follows
the higher epoch (``cascade.origins``). When the link is mended, the old
origin reads the row and stands down: exactly one active origin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from sqlalchemy.engine import make_url

from callbridge.cascade.leading import LeaseDriver
from callbridge.cascade.lease import Change, Lease, LeaseState
from callbridge.cascade.origins import Origins
from callbridge.store.db import Database
from callbridge.store.lease import LeaseStore
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


class Relay:
    """A TCP relay to PostgreSQL that can be cut (connections dropped, new ones refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        assert loop.time() - start < timeout, f"timed out: {what}"
        await asyncio.sleep(0.01)
    return loop.time() - start


def test_a_partitioned_active_origin_ends_as_the_standby(
    postgres_server: PostgresServer | None,
) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed")
    url = postgres_server.create_database()
    database = Database(url)
    database.upgrade()
    database.dispose()
    parsed = make_url(database.url)
    assert parsed.host is not None and parsed.port is not None

    async def run() -> None:
        relay = Relay((parsed.host, parsed.port))  # type: ignore[arg-type]
        await relay.open()
        through_relay = parsed.set(host="127.0.0.1", port=relay.port)
        changes: dict[str, list[Change]] = {"a": [], "b": []}
        a = LeaseDriver(
            Lease("a"),
            LeaseStore(through_relay.render_as_string(hide_password=False)),
            changes["a"].append,
        )
        b = LeaseDriver(Lease("b", patience=1.0), LeaseStore(database.url), changes["b"].append)
        a.start()
        await _until(lambda: a.lease.state is LeaseState.ACTIVE, 10, "a active")
        b.start()
        await _until(lambda: b.lease.state is LeaseState.STANDBY, 10, "b standby")
        edge = Origins(ttl=5.0)
        edge.heard("a", ("10.0.0.2", 4000), a.lease.epoch, True, 0.0)
        edge.heard("b", ("10.0.0.3", 4000), b.lease.epoch, False, 0.0)
        assert edge.current is not None and edge.current.node == "a"
        await asyncio.sleep(1.5)  # b's patience is over: it would take a free lease now

        await relay.cut()
        took = await _until(lambda: b.lease.state is LeaseState.ACTIVE, 5, "b takes over")
        assert b.lease.epoch == a.lease.epoch + 1
        # a cannot renew: lapsed, it still claims its epoch; the edge follows b's.
        await _until(lambda: a.lease.state is LeaseState.LAPSED, 5, "a lapsed")
        edge.heard("a", None, a.lease.epoch, a.lease.active, 1.0)
        edge.heard("b", None, b.lease.epoch, b.lease.active, 1.0)
        assert edge.current is not None and edge.current.node == "b"
        edge.heard("a", None, a.lease.epoch, a.lease.active, 1.5)
        assert edge.current.node == "b"

        await relay.open()  # mended
        await _until(lambda: a.lease.state is LeaseState.STANDBY, 10, "a stands down")
        assert b.lease.active and not a.lease.active
        assert [c.after for c in changes["a"]] == [
            LeaseState.ACTIVE, LeaseState.LAPSED, LeaseState.STANDBY,
        ]  # fmt: skip
        await asyncio.sleep(1.0)
        assert b.lease.state is LeaseState.ACTIVE and a.lease.state is LeaseState.STANDBY
        print(f"\nPARTITION: the standby held the lease {took * 1000:.0f} ms after the cut")
        await a.stop()
        await b.stop()
        await relay.cut()

    asyncio.run(run())
