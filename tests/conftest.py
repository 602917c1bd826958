"""Fixtures shared by the whole suite: databases on SQLite and on real PostgreSQL."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.events.schema import EventFile
from callbridge.store.db import Database
from tests.support.postgres import PostgresServer, running_server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "northwind-q3.toml"

_POSTGRES_MISSING = (
    "PostgreSQL is NOT INSTALLED here: the PostgreSQL half of the storage tests is SKIPPED. "
    "Install Debian's `postgresql` (scripts/test does) to run it."
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    with running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: once on SQLite, once on a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'callbridge.sqlite3'}"
    else:
        server: PostgresServer | None = request.getfixturevalue("postgres_server")
        if server is None:
            if os.environ.get("CI"):
                pytest.fail(_POSTGRES_MISSING)
            pytest.skip(_POSTGRES_MISSING)
        url = server.create_database()
    db = Database(url)
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'callbridge.sqlite3'}")
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


def example_data() -> dict[str, object]:
    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture
def example_spec() -> EventFile:
    return EventFile.model_validate(example_data())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if any(_POSTGRES_MISSING in str(getattr(r, "longrepr", "")) for r in skipped):
        terminalreporter.write_sep("!", "POSTGRESQL TESTS SKIPPED: not installed", red=True)
