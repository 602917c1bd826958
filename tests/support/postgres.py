"""A real PostgreSQL server, started for the test session in a temporary folder.

It runs as the ``postgres`` system user when the tests run as root (the
server refuses root), listens on a free loopback port and trusts local
connections. Each test gets a database of its own. ``listen`` and
``trust`` open it to test hosts in network namespaces too (the SIP proxy's
nodes share one database).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.support.ports import free_port


def find_bin_dir() -> Path | None:
    """The newest installed server's bin folder, or None when PostgreSQL is absent."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(
        self, bin_dir: Path, listen: tuple[str, ...] = (), trust: tuple[str, ...] = ()
    ) -> None:
        self.bin_dir = bin_dir
        self.listen = ("127.0.0.1", *listen)  # addresses besides loopback
        self.trust = trust  # networks (CIDR) whose connections are trusted, besides loopback
        self.root = Path(tempfile.mkdtemp(prefix="callbridge-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self._counter = 0

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._run_as, *args], check=True, capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            for network in self.trust:
                hba.write(f"host all all {network} trust\n")
        self.resume()

    def resume(self) -> None:
        """Start the server on its data folder (again, after ``pause``); returns once it answers."""
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "-o",
            f"-p {self.port} -k {self.root} -h {','.join(self.listen)} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def pause(self) -> None:
        """Stop the server as an operator would (``pg_ctl stop -m fast``): every
        connection is cut, new ones are refused, until ``resume``."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        self._counter += 1
        name = f"cb_test_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer | None]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
