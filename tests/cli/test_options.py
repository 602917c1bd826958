"""The command's global options and its stderr: `--db` and `-v` after the subcommand too,
and nothing on stderr unless asked for with `-v` or a migration actually runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from callbridge.cli.main import build_parser
from callbridge.store.db import MIGRATIONS, Database, default_url, schema_head
from tests.conftest import EXAMPLE

(HEAD,) = schema_head()  # the newest migration: what a new database is created at

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def run(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CALLBRIDGE_DB"}
    if db is not None:
        environment["CALLBRIDGE_DB"] = db
    return subprocess.run(
        [sys.executable, "-m", "callbridge", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


def test_quiet_unless_a_migration_runs_or_v(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cb.sqlite3'}"
    created = run("event", "create", str(EXAMPLE), db=db)
    assert created.returncode == 0 and created.stdout == "1\n"
    # A new database: one short line says so, and nothing of Alembic's.
    assert created.stderr.splitlines() == [f"callbridge: database created (schema {HEAD})"]
    for args in (["event", "list"], ["event", "show", "1"], ["announce", "1"]):
        result = run(*args, db=db)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", args
    # -v: debug logging, whatever it is, goes to stderr; the answer to stdout as ever.
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    verbose = run("event", "list", "-v", db=fresh)
    assert verbose.stdout == "no events\n"
    assert "Running upgrade" in verbose.stderr and "DEBUG" in verbose.stderr


def test_an_old_schema_is_upgraded_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    database.dispose()
    result = run("event", "list", db=url)
    assert result.stdout == "no events\n"
    assert result.stderr.splitlines() == [
        f"callbridge: database schema upgraded from 0003 to {HEAD}"
    ]
    assert run("event", "list", db=url).stderr == ""


def test_upgrade_says_what_it_changed(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'cb.sqlite3'}")
    done = database.upgrade()
    assert done is not None and done.before == () and done.after == (HEAD,)
    assert database.upgrade() is None
    database.dispose()


def test_global_options_after_the_subcommand(tmp_path: Path) -> None:
    here, there = tmp_path / "here.sqlite3", tmp_path / "there.sqlite3"
    env_db = f"sqlite:///{here}"
    other = f"sqlite:///{there}"
    assert run("event", "create", str(EXAMPLE), "--db", other, db=env_db).returncode == 0
    assert not here.exists()  # --db after the subcommand was obeyed
    assert "NWBX" in run("event", "list", "--db", other, db=env_db).stdout
    assert "NWBX" in run("event", "--db", other, "list", db=env_db).stdout
    md = run("announce", "1", "--db", other, "--format", "md", db=env_db)
    assert md.returncode == 0 and md.stdout.startswith("# Northwind Biologics")
    # Given on both sides, the one nearer the subcommand's arguments wins.
    assert "no events" in run("--db", other, "event", "list", "--db", env_db).stdout


@pytest.mark.parametrize(
    ("argv", "db", "verbose"),
    [
        (["serve", "--db", "postgresql://user@host/callbridge", "--sip-port", "5080"],
         "postgresql://user@host/callbridge", False),
        (["--db", "sqlite:///a.sqlite3", "serve"], "sqlite:///a.sqlite3", False),
        (["-v", "serve", "--db", "sqlite:///b.sqlite3"], "sqlite:///b.sqlite3", True),
        (["serve", "-v"], None, True),
        (["cache", "--origin", "127.0.0.1:8001", "--db", "sqlite:///c.sqlite3"],
         "sqlite:///c.sqlite3", False),
        (["user", "add", "dana", "-v"], None, True),
        (["event", "list"], None, False),
    ],
)  # fmt: skip
def test_global_options_parse_on_either_side(
    argv: list[str], db: str | None, verbose: bool
) -> None:
    args = build_parser().parse_args(argv)
    assert args.db == (db or default_url())
    assert args.verbose is verbose
    if argv[0] == "serve":
        assert args.sip_port == (5080 if "5080" in argv else 5060)


def test_a_schema_at_the_head_is_left_alone(database: Database) -> None:
    """On SQLite and on a real PostgreSQL: read the revision, start no migration."""
    assert database.upgrade() is None


def test_the_guessing_budgets_parse_as_burst_and_seconds() -> None:
    args = build_parser().parse_args(["serve", "--guess-budget", "4:0.5"])
    assert args.guess_budget == (4, 0.5)
    assert args.trunk_guess_budget == (300, 10.0)
    for bad in ("4", "0:10", "4:0", "4:-1", "a:b", "4:1e9"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--trunk-guess-budget", bad])


def test_the_transcript_after_each_call_is_on_unless_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.served import served

    assert served(tmp_path / "on", monkeypatch).transcripts is True
    assert served(tmp_path / "off", monkeypatch, "--no-transcripts").transcripts is False
