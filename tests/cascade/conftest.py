"""An origin and two edges (`callbridge serve --role ...`) sharing one PostgreSQL, on loopback.

Each node is a real `callbridge serve` with ports of its own; the nodes talk
over the store's ``LISTEN/NOTIFY`` and send each other RTP. The callers are
``tests.support.phone.Phone``s that dial a node straight (the Kamailio in
front is tests/proxy's concern: which node a call lands on changes nothing
here). The operator's API is the origin's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from callbridge.cascade.seal import generate_key_file
from callbridge.store.db import Database
from callbridge.store.users import UserStore
from tests.support.nodes import start_node
from tests.support.postgres import PostgresServer, find_bin_dir
from tests.support.procs import stop_tree
from tests.telephony.conftest import RunningServer, _up, free_port, need


@dataclass
class Cascade:
    origin: RunningServer
    edges: list[RunningServer]
    database: Database
    key_file: Path  # the bus's key, as every node has it
    # Processes a test started in a node's place (an origin started again): stopped at the end.
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def live(self, event_id: int) -> dict[str, Any]:
        response = self.origin.api("GET", f"/api/events/{event_id}/live")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


# The origin's registered edges (``serve --edge``): the two that run, and edge-c, which
# no process runs: a key holder that test_cascade.py's forger test speaks as.
EDGES = {"edge-a": "127.0.0.1", "edge-b": "127.0.0.1", "edge-c": "127.0.0.1"}


def _node(
    tmp: Path, url: str, database: Database, token: str, role: str, name: str, rtp_low: int
) -> RunningServer:
    edges = [f"--edge={n}={h}" for n, h in EDGES.items()] if role == "origin" else []
    return start_node(
        url, database, token, tmp / name, tmp / f"{name}.log",
        http=("127.0.0.1", free_port()), sip=("127.0.0.1", free_port()),
        rtp_ports=f"{rtp_low}-{rtp_low + 99}", media_timeout=20,
        extra=("--role", role, "--node-id", name, "--bus-key-file", str(tmp / "bus.key"), *edges),
    )  # fmt: skip


@dataclass(frozen=True)
class SharedStore:
    """What every node of a cascade test shares: the database, and the operator's API token."""

    url: str
    database: Database
    token: str


@contextlib.contextmanager
def shared_store(tmp: Path, **postgres: Any) -> Iterator[SharedStore]:
    """A PostgreSQL of its own (``postgres``: ``PostgresServer``'s options) with the schema,
    the operator and their token, and the bus's key in ``tmp / "bus.key"``; stopped after."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        need("initdb")
        raise AssertionError("unreachable")
    server = PostgresServer(bin_dir, **postgres)
    server.start()
    database: Database | None = None
    try:
        url = server.create_database()
        database = Database(url)
        database.upgrade()
        users = UserStore(database)
        users.add("operator", "correct horse battery")
        token = users.issue_token("operator")
        generate_key_file(tmp / "bus.key")
        yield SharedStore(url, database, token)
    finally:
        if database is not None:
            database.dispose()
        server.stop()


@contextlib.contextmanager
def cascade(tmp: Path) -> Iterator[Cascade]:
    """The origin and edges ``edge-a`` and ``edge-b``, up; all stopped afterwards."""
    with shared_store(tmp) as store:
        nodes: list[RunningServer] = []
        up: Cascade | None = None
        try:
            rtp_low = 31000 + (os.getpid() % 50) * 300
            for n, (role, name) in enumerate(
                (("origin", "origin"), ("edge", "edge-a"), ("edge", "edge-b"))
            ):
                low = rtp_low + 100 * n
                nodes.append(_node(tmp, store.url, store.database, store.token, role, name, low))
            for node in nodes:
                node.wait_for(lambda node=node: _up(node), timeout=240)  # type: ignore[misc]
            up = Cascade(nodes[0], nodes[1:], store.database, tmp / "bus.key")
            yield up
        finally:
            for node in nodes:
                stop_tree(node.process)
            for process in up.others if up is not None else ():
                stop_tree(process)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cascade]:
    with cascade(tmp_path_factory.mktemp("cascade")) as up:
        yield up


def tone_level(audio: npt.NDArray[np.int16], hz: float, rate: int = 8000) -> float:
    """The share of ``audio``'s energy within 20 Hz of ``hz`` (0 to 1)."""
    if len(audio) < rate // 10:
        return 0.0
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    total = float(spectrum[1:].sum())
    band = float(spectrum[(freqs > hz - 20) & (freqs < hz + 20)].sum())
    return band / total if total > 0 else 0.0
