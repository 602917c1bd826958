"""Bridge nodes (``callbridge serve``) for the tests that run several, started alike.

tests/proxy (two nodes behind Kamailio) and tests/cascade (an origin and two
edges, on loopback or each on a network namespace's host) start their nodes
the same way; what differs is where a node runs (``prefix``: the command
that enters its namespace), its addresses and ports, and its role. They
are stopped with ``tests.support.procs.stop_tree``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from callbridge.store.db import Database
from tests.telephony.conftest import RunningServer

# The nodes share one secret key, as a deployment's nodes do.
ENV = {**os.environ, "CALLBRIDGE_SECRET_KEY": "k" * 40}


def start_node(
    url: str,
    database: Database,
    token: str,
    data_dir: Path,
    log_path: Path,
    *,
    http: tuple[str, int],
    sip: tuple[str, int],
    rtp_ports: str,
    media_timeout: int,
    extra: Sequence[str] = (),
    prefix: Sequence[str] = (),
) -> RunningServer:
    """Start one node on the shared store ``url``; returns at once (wait for it with ``_up``).

    ``database`` and ``token`` are the test's own handle on the store and
    the operator's API token; ``extra`` goes after ``serve``'s own options
    (``--role``, ``--trunk``, ...). The node logs to ``log_path``.
    """
    command = [
        *prefix, sys.executable, "-m", "callbridge", "--db", url, "serve", "--no-live-captions",
        "--no-transcripts",  # an engine per ended call: the transcript tests ask for it
        "--host", http[0], "--port", str(http[1]),
        "--sip-host", sip[0], "--sip-port", str(sip[1]),
        "--data-dir", str(data_dir), "--rtp-ports", rtp_ports,
        "--media-timeout", str(media_timeout), "--media-priority", "normal",
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    return RunningServer(
        f"http://{http[0]}:{http[1]}", sip[1], database, token, process, log_path, data_dir
    )


def start_again(node: RunningServer) -> RunningServer:
    """``node`` (killed) started again with the same command line, logging to the same file."""
    process = subprocess.Popen(
        node.process.args,
        stdout=node.log_path.open("ab"),
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    return dataclasses.replace(node, process=process)
