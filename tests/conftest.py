"""Fixtures shared by the whole suite: databases on SQLite and on real PostgreSQL."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from callbridge.events.schema import EventFile
from callbridge.store.db import Database
from tests.support.postgres import PostgresServer, running_server

# Hypothesis tests check what comes out, not how fast: a parser example that took over
# 200 ms on a 2-core machine busy with the suite's servers failed as "too slow" (a
# timing failure, not a finding). Speed is measured by bench/, not by the tests.
settings.register_profile("callbridge", deadline=None)
settings.load_profile("callbridge")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "northwind-q3.toml"

_POSTGRES_MISSING = (
    "PostgreSQL is NOT INSTALLED here: the PostgreSQL half of the storage tests is SKIPPED. "
    "Install Debian's `postgresql` (scripts/test does) to run it."
)


@pytest.fixture(autouse=True)
def _umask_kept() -> Iterator[None]:
    """Each test ends with the process's umask as it began.

    ``cli.main`` makes it owner-only, as a server's must be; a test that calls it
    in-process would otherwise leave that to the tests after it in the same worker,
    whose engines (Varnish's worker runs as its own user) must read what they write.
    """
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


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


# The parallel part's slowest files, slowest first: seconds per file (setup, calls and
# teardown) in a clean clone's `CI=true .ci/run` with 5 workers on 2 cores (--durations=0;
# a server or several started, calls placed, floods run, subprocesses). scripts/test passes
# --no-loadscope-reorder so xdist hands files out in this order: its default, the files
# with the most tests first, sent these one- to three-test files out last. A file not
# listed keeps its place after these; a new slow file belongs here.
SLOW_FILES = (
    "tests/telephony/test_database_outage.py",  # 125 s (a 60 s outage)
    "tests/telephony/test_sipp.py",  # 109 s
    "tests/proxy/test_proxy.py",  # 103 s
    "tests/telephony/test_guard.py",  # 101 s
    "tests/cli/test_main.py",  # 70 s
    "tests/telephony/test_hd_voice.py",  # 64 s
    "tests/telephony/test_engagement.py",  # 60 s
    "tests/telephony/test_baresip.py",  # 57 s
    "tests/cascade/test_through_proxy.py",  # 57 s
    "tests/telephony/test_crash.py",  # 54 s
    "tests/telephony/test_replay.py",  # 51 s
    "tests/web/test_auth.py",  # 48 s
    "tests/telephony/test_moderation.py",  # 48 s
    "tests/telephony/test_console.py",  # 48 s
    "tests/telephony/test_replay_window.py",  # 43 s
    "tests/cascade/test_cascade.py",  # 39 s
    "tests/transcript/test_no_speech_dropped.py",  # 32 s
    "tests/web/test_webcast.py",  # 32 s
    "tests/cascade/test_origin_restart.py",  # 31 s
    "tests/telephony/test_media_attacks.py",  # 31 s
    "tests/telephony/test_passcodes.py",  # 30 s
    "tests/test_readme.py",  # 28 s
    "tests/web/test_editor.py",  # 27 s
    "tests/store/test_events.py",  # 25 s
    "tests/web/test_forwarded_and_logins.py",  # 25 s
    "tests/web/test_listener_page.py",  # 23 s
    "tests/web/test_deck.py",  # 23 s
    "tests/telephony/test_dial_out.py",  # 22 s
    "tests/telephony/test_trunk_failures.py",  # 20 s
    "tests/web/test_question_flood.py",  # 18 s
    "tests/transcript/test_end_to_end.py",  # 17 s
    "tests/web/test_api.py",  # 17 s
    "tests/web/test_page_states.py",  # 17 s
    "tests/fuzz/test_serve.py",  # 16 s
    "tests/telephony/test_speaker_list.py",  # 16 s
    "tests/web/test_browser.py",  # 15 s
    "tests/slides/test_sandbox.py",  # 15 s
    "tests/cli/test_options.py",  # 15 s
    "tests/telephony/test_carrier_tls.py",  # 14 s
    "tests/telephony/test_nat.py",  # 13 s
    "tests/edge/test_gate.py",  # 13 s
    "tests/transcript/test_live.py",  # 13 s
    "tests/web/test_pages.py",  # 13 s
    "tests/store/test_audience.py",  # 13 s
    "tests/web/test_accessibility.py",  # 12 s
    "tests/web/test_speakers.py",  # 11 s
    "tests/store/test_users.py",  # 10 s
    "tests/web/test_key_figures.py",  # 10 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On xdist's workers, the files in SLOW_FILES first (see there), the rest as collected."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the order is the collection's, package fixtures kept together
    rank = {path: place for place, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
