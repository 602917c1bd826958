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


# The parallel part's slowest files (whole-file seconds on 2 loaded cores: a server or
# several started, calls placed, floods run), slowest first. scripts/test passes
# --no-loadscope-reorder so xdist hands files out in this order: its default of the
# most tests first had sent these one- to three-test files out last, where a 60-100 s
# file starting as the other workers ran dry set the part's length. A file not listed
# keeps its place after these; a new slow file belongs here.
SLOW_FILES = (
    "tests/telephony/test_guard.py",
    "tests/web/test_auth.py",
    "tests/cli/test_main.py",
    "tests/proxy/test_proxy.py",
    "tests/cascade/test_through_proxy.py",
    "tests/edge/test_varnish.py",
    "tests/web/test_webcast.py",
    "tests/telephony/test_crash.py",
    "tests/telephony/test_sipp.py",
    "tests/web/test_console_states.py",
    "tests/web/test_forwarded_and_logins.py",
    "tests/cli/test_options.py",
    "tests/telephony/test_replay_window.py",
    "tests/telephony/test_media_attacks.py",
    "tests/cascade/test_cascade.py",
    "tests/cascade/test_origin_restart.py",
    "tests/cascade/test_relayed.py",
    "tests/cascade/test_bus.py",
    "tests/telephony/test_moderation.py",
    "tests/telephony/test_replay.py",
    "tests/telephony/test_engagement.py",
    "tests/telephony/test_console.py",
    "tests/telephony/test_transcript_call.py",
    "tests/transcript/test_end_to_end.py",
    "tests/transcript/test_no_speech_dropped.py",
    "tests/web/test_question_flood.py",
    "tests/telephony/test_baresip.py",
    "tests/telephony/test_speaker_list.py",
    "tests/telephony/test_passcodes.py",
    "tests/telephony/test_written_questions.py",
    "tests/telephony/test_sip_attacks.py",
    "tests/fuzz/test_serve.py",
    "tests/web/test_accessibility.py",
    "tests/web/test_browser.py",
    "tests/web/test_page_states.py",
    "tests/edge/test_gate.py",
    "tests/edge/test_gate_vcl.py",
    "tests/edge/test_serve_script.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On xdist's workers, the files in SLOW_FILES first (see there), the rest as collected."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the order is the collection's, package fixtures kept together
    rank = {path: place for place, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
