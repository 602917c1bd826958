"""The `callbridge` command, run as a real subprocess where the exit code matters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def run(
    *args: str, db: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CALLBRIDGE_DB": db, **env}
    return subprocess.run(
        [sys.executable, "-m", "callbridge", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=environment,
        timeout=60,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def test_create_list_show(db: str) -> None:
    created = run("event", "create", str(EXAMPLE), db=db)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "1"
    listing = run("event", "list", db=db)
    assert listing.returncode == 0
    assert "NWBX" in listing.stdout
    assert "2026-11-05 16:30 EST" in listing.stdout
    shown = run("event", "show", "1", db=db)
    assert '"passcode": "8024721"' in shown.stdout


def test_global_db_option_wins_over_the_environment(tmp_path: Path, db: str) -> None:
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    assert run("--db", other, "event", "create", str(EXAMPLE), db=db).returncode == 0
    assert "no events" in run("event", "list", db=db).stdout
    assert "NWBX" in run("--db", other, "event", "list", db=db).stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('timezone = "America/New_York"', 'timezone = "Mars/Olympus"'), "event.timezone:"),
        (('number = "+1 913-555-0123"', 'number = "+1 555-123-4567"'), "event.dial_in.1.number:"),
        (("replay_until = 2026-11-12", "replay_until = 2026-11-01"), "event.replay_until:"),
        (('passcode = "8024721"', 'passcode = "80-24721"'), "event.passcode:"),
        (('title = "Third Quarter', 'tile = "Third Quarter'), "event.title: Field required"),
        (('ticker = "NWBX"', "ticker = [1"), "not valid TOML"),
    ],
)
def test_bad_file_exits_non_zero_with_one_line(
    tmp_path: Path, db: str, edit: tuple[str, str], message: str
) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    result = run("event", "create", str(bad), db=db)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "no events" in run("event", "list", db=db).stdout


def test_taken_passcode_is_refused(db: str) -> None:
    assert run("event", "create", str(EXAMPLE), db=db).returncode == 0
    again = run("event", "create", str(EXAMPLE), db=db)
    assert again.returncode == 2
    assert "event.passcode: is already in use" in again.stderr


def test_user_add_reads_the_password_from_stdin(db: str) -> None:
    added = run("user", "add", "dana", db=db, stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    short = run("user", "add", "sam", db=db, stdin="short\n")
    assert short.returncode == 2
    assert "password:" in short.stderr
    token = run("user", "token", "dana", db=db)
    assert token.stdout.startswith("cb_")


def test_announce_prints_the_release_and_the_invite(db: str) -> None:
    assert run("event", "create", str(EXAMPLE), db=db).returncode == 0
    text = run("announce", "1", "--format", "text", db=db)
    assert text.returncode == 0
    assert text.stdout.startswith(
        "Northwind Biologics, Inc. Announces Conference Call to Discuss its Third Quarter"
    )
    assert "4:30 p.m. ET on Thursday, November 5, 2026" in text.stdout
    ics = run("announce", "1", "--format", "ics", db=db)
    assert "DTSTART:20261105T213000Z" in ics.stdout
    missing = run("announce", "7", db=db)
    assert missing.returncode == 2
    assert "there is no event 7" in missing.stderr


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    # Creating the database says so in one line; the error is the one other line.
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("callbridge: database created")
    ]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_event_file_that_is_not_utf8_is_one_line(tmp_path: Path, db: str) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(EXAMPLE.read_text().replace("tumours", "tumeurs \xe9").encode("latin-1"))
    line = _one_line_error(run("event", "create", str(latin1), db=db))
    assert f"{latin1}: not UTF-8 text (byte 0xe9" in line
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    assert "not UTF-8" in _one_line_error(run("event", "create", str(binary), db=db))
    assert "no events" in run("event", "list", db=db).stdout


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path, db: str) -> None:
    line = _one_line_error(run("event", "create", str(tmp_path), db=db))
    assert line == f"callbridge: {tmp_path}: is a directory, not an event file"
    missing = tmp_path / "nope.toml"
    line = _one_line_error(run("event", "create", str(missing), db=db))
    assert line == f"callbridge: {missing}: no such file"
    unreadable = tmp_path / "locked.toml"
    unreadable.write_text(EXAMPLE.read_text())
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: nothing to see here
        return
    assert "cannot be read" in _one_line_error(run("event", "create", str(unreadable), db=db))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("starts_at = 2026-11-05T16:30:00", "starts_at = 9999-12-31T23:30:00"),
            "event.starts_at: must fall between the years 1970 and 2999",
        ),
        (
            ("replay_until = 2026-11-12", "replay_until = 9999-12-31"),
            "event.replay_until: must fall between the years",
        ),
        (
            ('title = "Third Quarter', 'title = "Third\\r\\nQuarter'),
            "event.title: must be one line, without control characters (found U+000D)",
        ),
        (
            ('city = "CAMBRIDGE, Mass."', 'city = "CAMBRIDGE,\\nMass."'),
            "company.city: must be one line",
        ),
        (
            ('exchange = "Nasdaq"', 'exchange = "Nas\\u0000daq"'),
            "company.exchange: must be one line",
        ),
    ],
)
def test_out_of_range_dates_and_line_breaks_are_one_line(
    tmp_path: Path, db: str, edit: tuple[str, str], message: str
) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    assert message in _one_line_error(run("event", "create", str(bad), db=db))


def test_an_id_beyond_64_bits_is_one_line(db: str) -> None:
    for command in (("event", "show"), ("announce",)):
        line = _one_line_error(run(*command, "99999999999999999999", db=db))
        assert line == "callbridge: there is no event 99999999999999999999"


def test_user_tokens_expire_are_listed_and_revoked(db: str) -> None:
    assert run("user", "add", "dana", db=db, stdin="correct horse battery\n").returncode == 0
    forever = run("user", "token", "dana", "--label", "ci", db=db).stdout.strip()
    monthly = run("user", "token", "dana", "--expires", "30d", db=db).stdout.strip()
    assert forever.startswith("cb_") and monthly.startswith("cb_")
    for bad in ("30", "0d", "²d", "30y"):
        refused = run("user", "token", "dana", "--expires", bad, db=db)
        assert refused.returncode == 2 and "--expires" in refused.stderr, bad
    listing = run("user", "tokens", "dana", db=db)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "KIND", "CREATED", "LAST", "USED", "EXPIRES", "LABEL"]
    ids = [line.split()[0] for line in lines[1:]]
    assert ids == ["t1", "t2"]
    stamp = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z"
    assert lines[1].split()[-1] == "ci" and len(re.findall(stamp, lines[1])) == 1
    # The 30-day token shows when it was made and when it expires.
    assert len(re.findall(stamp, lines[2])) == 2
    assert run("user", "revoke", "dana", "t1", db=db).returncode == 0
    assert [
        line.split()[0] for line in run("user", "tokens", "dana", db=db).stdout.splitlines()[1:]
    ] == ["t2"]
    missing = run("user", "revoke", "dana", "t1", db=db)
    assert missing.returncode == 2 and "id:" in missing.stderr
    assert run("user", "revoke", "dana", db=db).returncode == 2
    assert run("user", "revoke", "dana", "--all", db=db).returncode == 0
    assert "no sessions or tokens" in run("user", "tokens", "dana", db=db).stdout
    nobody = run("user", "tokens", "nobody", db=db)
    assert nobody.returncode == 2 and "name:" in nobody.stderr


def test_user_passwd_ends_every_token(db: str) -> None:
    run("user", "add", "dana", db=db, stdin="correct horse battery\n")
    run("user", "token", "dana", db=db)
    changed = run("user", "passwd", "dana", db=db, stdin="a brand new password\n")
    assert changed.returncode == 0, changed.stderr
    assert "no sessions or tokens" in run("user", "tokens", "dana", db=db).stdout
    assert run("user", "passwd", "nobody", db=db, stdin="a brand new password\n").returncode == 2


def test_serve_takes_secure_cookies() -> None:
    from callbridge.cli.main import build_parser

    assert build_parser().parse_args(["serve", "--secure-cookies"]).secure_cookies is True
    assert build_parser().parse_args(["serve"]).secure_cookies is False
