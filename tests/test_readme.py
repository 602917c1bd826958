"""The README's own examples, run as written against a temporary SQLite database.

Commands are read from README.md itself (its indented code blocks and its
inline code), so an example that stops working, or a README that stops
showing one, fails here. Run offline: `user add`, `event create`, `event
list`, `announce ID --format ...` (each format the README names) and
`user token NAME --expires ...`; and `scripts/serve --db URL --sip-port N`,
started and stopped, with the database swapped for a temporary SQLite file,
free ports, and a temporary data folder. Not run here: the cache node
(Varnish on port 80), the test suite, the installers and the benchmarks.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from callbridge.store.db import schema_head
from tests.telephony.conftest import free_port

(HEAD,) = schema_head()  # the newest migration: what a new database is created at

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI = ".venv/bin/callbridge"
FORMATS = ("text", "html", "md", "ics")


def code_lines(text: str) -> list[tuple[str, str]]:
    """Each command in the README's indented code blocks: (command, its trailing comment).

    A line ending in a backslash continues on the next.
    """
    found: list[tuple[str, str]] = []
    pending = ""
    previous_blank = True
    in_block = False
    for line in text.splitlines():
        if line.startswith("    ") and (in_block or previous_blank):
            in_block = True
            body = pending + line.strip()
            if body.endswith("\\"):
                pending = body[:-1].rstrip() + " "
                continue
            pending = ""
            command, _, comment = body.partition(" # ")
            found.append((command.strip(), comment.strip()))
        else:
            in_block = False
        previous_blank = not line.strip()
    return found


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    # `.venv/bin/callbridge` is the entry point scripts/venv installs; the
    # checkout's code under test is the same program run as a module.
    return subprocess.run(
        [sys.executable, "-m", "callbridge", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
    )


def test_the_readme_shows_the_examples_this_test_runs() -> None:
    text = README.read_text()
    commands = [command for command, _ in code_lines(text)]
    for prefix in ("user add", "event create examples/", "event list", "announce 1 --format"):
        assert any(c.startswith(f"{CLI} {prefix}") for c in commands), prefix
    assert any(c.startswith("scripts/serve --db ") for c in inline_code(text))


def test_the_cli_examples_run_as_written(tmp_path: Path) -> None:
    text = README.read_text()
    db = tmp_path / "readme.sqlite3"
    env = {**os.environ, "CALLBRIDGE_DB": f"sqlite:///{db}"}
    ran: list[str] = []
    for command, comment in code_lines(text):
        if not command.startswith(CLI + " "):
            continue
        args = shlex.split(command)[1:]
        if args[:2] == ["user", "add"]:
            result = run_cli(args, env, stdin="correct horse battery\n")
            assert result.stdout.strip() == f"operator {args[2]} saved", result.stderr
        elif args[:2] == ["event", "create"]:
            result = run_cli(args, env)
            assert result.stdout.strip().isdigit(), result.stderr  # "prints the new id"
        elif args[:2] == ["event", "list"]:
            result = run_cli(args, env)
            assert "NWBX" in result.stdout and "scheduled" in result.stdout, result.stderr
        elif args[0] == "announce":
            # "announce 1 --format text      # or html, md, ics": each one.
            named = [f for f in FORMATS if re.search(rf"\b{f}\b", comment)]
            for fmt in [args[args.index("--format") + 1], *named]:
                variant = [*args[: args.index("--format")], "--format", fmt]
                result = run_cli(variant, env)
                assert result.returncode == 0, (variant, result.stderr)
                assert "Northwind Biologics" in result.stdout or "NWBX" in result.stdout, fmt
                assert result.stderr == "", (variant, result.stderr)
                ran.append(" ".join(variant))
            continue
        else:
            continue  # the cache node: Varnish on port 80, not run here
        assert result.returncode == 0, (command, result.stderr)
        # The first command creates the database and says so in one line;
        # after that the examples print their answer and nothing else.
        if ran:
            assert result.stderr == "", (command, result.stderr)
        else:
            assert result.stderr.splitlines() == [f"callbridge: database created (schema {HEAD})"]
        ran.append(command)
    assert len(ran) >= 3 + len(FORMATS), ran

    # Inline: `callbridge user token NAME --expires 30d` for the operator added above.
    token = next(c for c in inline_code(text) if c.startswith("callbridge user token NAME"))
    args = ["dana" if a == "NAME" else a for a in shlex.split(token)[1:]]
    issued = run_cli(args, env)
    assert issued.returncode == 0 and issued.stdout.startswith("cb_"), issued.stderr


def test_scripts_serve_with_db_and_sip_port_after_it(tmp_path: Path) -> None:
    """`scripts/serve --db postgresql://user@host/callbridge --sip-port 5080`, as the README
    writes it, with a temporary SQLite database and free ports in their place."""
    example = next(c for c in inline_code(README.read_text()) if c.startswith("scripts/serve --db"))
    argv = shlex.split(example)
    db = tmp_path / "serve.sqlite3"
    unused = tmp_path / "from-the-environment.sqlite3"
    http, sip = free_port(), free_port()
    swapped = {"--db": f"sqlite:///{db}", "--sip-port": str(sip)}
    for option, value in swapped.items():
        assert option in argv, example
        argv[argv.index(option) + 1] = value
    argv += ["--port", str(http), "--data-dir", str(tmp_path / "var")]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [str(ROOT / argv[0]), *argv[1:]],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        # --db given after `serve` must win over the environment.
        env={**os.environ, "CALLBRIDGE_DB": f"sqlite:///{unused}"},
        start_new_session=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 300  # scripts/venv may install first
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                answer = httpx.get(f"http://127.0.0.1:{http}/events", timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, log.read_text()[-3000:]
        for _ in range(100):
            if f"SIP on 127.0.0.1:{sip} " in log.read_text():
                break
            time.sleep(0.1)
        assert f"SIP on 127.0.0.1:{sip} " in log.read_text(), log.read_text()[-3000:]
        assert db.exists() and not unused.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == 0, log.read_text()[-3000:]
    assert "unrecognized arguments" not in log.read_text()
