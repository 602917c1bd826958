#!/usr/bin/env python3
"""Outbox benchmark: how fast mail leaves, what 10,000 queued registrants cost, how soon it arrives.

A real SMTP server (aiosmtpd with STARTTLS and AUTH, ``tests/support/smtp.py``)
runs in a process of its own pinned to ``--smtp-core``; everything of
callbridge runs pinned to ``--core`` (taskset / sched_setaffinity). Three
figures:

1. **Planning and memory**: ``--registrants`` registrants (10,000) who agreed
   to reminders; the planner renders and enqueues every one's 24-hour
   reminder in one pass (time, peak Python allocation by tracemalloc, the
   process's RSS growth, the database file's size).
2. **Throughput**: one sender (``MailWorker``, one SMTP connection, STARTTLS
   and AUTH once) sends them all to the local server: messages a second,
   each marked sent in the database the moment its 250 comes.
3. **Registration to accepted**: ``callbridge serve --smtp`` (the real
   server, its web process's own sender), and ``--registrations`` browsers
   registering on the webcast page one after another: from the POST to the
   moment the SMTP server has the confirmation (its arrival time, same clock).

    taskset -c 0,1 .venv/bin/python bench/outbox_bench.py                  # defaults
    .venv/bin/python bench/outbox_bench.py --registrants 10000 --registrations 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import percentiles  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.smtp import SmtpServer, make_certificate  # noqa: E402
from tests.telephony.conftest import start_server  # noqa: E402

from callbridge.mail.compose import Letterhead, Sender  # noqa: E402
from callbridge.mail.planner import CONSENT_WORDING, Planner  # noqa: E402
from callbridge.mail.smtp import SmtpConfig, SmtpSender  # noqa: E402
from callbridge.mail.worker import MailWorker  # noqa: E402
from callbridge.store.db import Database  # noqa: E402
from callbridge.store.events import EventStore  # noqa: E402
from callbridge.store.models import MailConsentRow, WebcastListenerRow  # noqa: E402
from callbridge.store.outbox import MailKind, Outbox, OutboxState  # noqa: E402

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def serve_smtp(port: int, folder: Path) -> None:
    """The SMTP server's process: one line "<arrival time> <Message-ID>" per message accepted."""
    server = SmtpServer(port, *make_certificate(folder))
    original = server.handler.handle_DATA

    async def handle_data(*args: object) -> str:
        answer = await original(*args)  # type: ignore[arg-type]
        envelope = args[2]
        found = MESSAGE_ID.search(envelope.original_content or b"")  # type: ignore[attr-defined]
        print(f"{time.time():.6f} {found.group(1).decode() if found else '-'}", flush=True)
        return answer

    server.handler.handle_DATA = handle_data  # type: ignore[method-assign]
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        server.stop()


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def plan_and_send(args: argparse.Namespace, folder: Path, smtp: SmtpServer) -> None:
    from tests.mail.conftest import make_event

    database = Database(f"sqlite:///{folder / 'bench.sqlite3'}")
    database.upgrade()
    start = datetime.now(UTC) + timedelta(hours=23, minutes=30)
    event = make_event(database, start)
    letterhead = Letterhead(
        Sender.parse("Northwind IR <ir@northwind.example>"),
        "https://ir.northwind.example",
        "k" * 40,
    )
    outbox = Outbox(database)
    registered = datetime.now(UTC) - timedelta(days=2)
    clock = time.perf_counter()
    # Registrants and their consent written in bulk: the registration path is figure 3's.
    with database.session() as session, session.begin():
        session.execute(
            insert(WebcastListenerRow),
            [
                {
                    "event_id": event.id,
                    "token_sha256": f"{n:064x}",
                    "name": f"Analyst {n}",
                    "firm": "Acme Capital",
                    "email": f"a{n}@acme.example",
                    "registered_at": registered,
                    "live_seconds": 0,
                    "replay_seconds": 0,
                }
                for n in range(args.registrants)
            ],
        )
        ids = session.scalars(select(WebcastListenerRow.id)).all()
        session.execute(
            insert(MailConsentRow),
            [
                {
                    "listener_id": i,
                    "event_id": event.id,
                    "follow_up": True,
                    "wording": CONSENT_WORDING,
                    "given_at": registered,
                }
                for i in ids
            ],
        )
    print(f"{args.registrants:,} registrants written in {time.perf_counter() - clock:.1f} s")

    planner = Planner(outbox, EventStore(database), letterhead, lambda _: False)
    before = rss_kib()
    if args.trace:
        tracemalloc.start()  # slows the allocation-heavy rendering about twofold
    clock = time.perf_counter()
    written = planner.plan(datetime.now(UTC))
    planned = time.perf_counter() - clock
    _, peak = tracemalloc.get_traced_memory() if args.trace else (0, 0)
    tracemalloc.stop()
    grown = rss_kib() - before
    size = (folder / "bench.sqlite3").stat().st_size
    wal = folder / "bench.sqlite3-wal"
    size += wal.stat().st_size if wal.exists() else 0
    print(
        f"planned {written:,} reminders in {planned:.1f} s ({written / planned:,.0f}/s); "
        + (f"peak Python allocation {peak / 2**20:.0f} MiB, " if args.trace else "")
        + f"RSS grew {grown / 1024:.0f} MiB "
        f"(max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB); "
        f"database {size / 2**20:.0f} MiB"
    )
    queued = outbox.counts().get(OutboxState.QUEUED.value, 0)

    config = SmtpConfig.parse(smtp.url, smtp.ca_file())
    worker = MailWorker(outbox, [SmtpSender(config) for _ in range(args.connections)], batch=50)

    async def send_all() -> int:
        async def drain(transport: SmtpSender) -> None:
            try:
                while await worker.send_due(transport):
                    pass
            finally:
                await transport.close()

        await asyncio.gather(*(drain(t) for t in worker.transports))  # type: ignore[arg-type]
        return worker.sent

    clock = time.perf_counter()
    sent = asyncio.run(send_all())
    took = time.perf_counter() - clock
    left = outbox.counts()
    print(
        f"sent {sent:,} of {queued:,} queued in {took:.1f} s: {sent / took:,.0f} messages/s "
        f"({args.connections} connection(s), STARTTLS+AUTH once each; each row marked sent "
        f"as its 250 came); left {left}"
    )
    reminder = next(e for e in outbox.entries() if e.kind is MailKind.REMINDER)
    print(f"  one reminder: {reminder.answer!r}")
    database.dispose()


def registration_latency(
    args: argparse.Namespace, folder: Path, smtp: SmtpServer, arrivals: dict[str, float], core: str
) -> None:
    with start_server(
        folder / "serve",
        "--smtp",
        smtp.url,
        "--smtp-from",
        "IR <ir@northwind.example>",
        "--smtp-ca",
        str(smtp.ca_file()),
        # Each registration from an address of its own (X-Forwarded-For, as behind the cache
        # tier): one address may register 20 times, then once every 6 s.
        "--trusted-proxy",
        "127.0.0.1/32",
        "--public-url",
        "https://ir.northwind.example",
        prefix=("taskset", "-c", core),
    ) as server:
        event = server.create_event(timedelta(hours=3), title="Outbox bench", period="Q4")
        outbox = Outbox(server.database)
        waits = []
        for n in range(args.registrations):
            address = {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
            with httpx.Client(base_url=server.http_url, timeout=10, headers=address) as browser:
                page = browser.get(f"/events/{event.id}/webcast").text
                match = CSRF.search(page)
                assert match, "the registration form"
                sent_at = time.time()
                answer = browser.post(
                    f"/events/{event.id}/webcast/register",
                    data={
                        "csrf_token": match.group(1),
                        "name": f"Reg {n}",
                        "firm": "Acme",
                        "email": f"r{n}@acme.example",
                        "follow_up": "yes",
                    },
                )
                assert answer.status_code in (200, 303), answer.text[:300]
            deadline = time.monotonic() + 30
            while True:
                ids = {
                    e.message_id
                    for e in outbox.entries(event.id)
                    if e.dedupe_key.startswith("confirmation:")
                }
                got = [arrivals[i] for i in ids if i in arrivals]
                if len(got) == n + 1:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"confirmation {n} never arrived:\n{server.log()[-2000:]}")
                time.sleep(0.002)
            newest = max(got)
            waits.append((newest - sent_at) * 1000)
        print(
            f"registration POST to confirmation accepted by the SMTP server, "
            f"{len(waits)} registrations one after another (ms): {percentiles(waits)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument("--registrations", type=int, default=50)
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections at once")
    parser.add_argument(
        "--trace", action="store_true", help="also the peak Python allocation (tracemalloc)"
    )
    parser.add_argument("--core", type=int, default=0, help="callbridge's core")
    parser.add_argument("--smtp-core", type=int, default=1, help="the SMTP server's core")
    parser.add_argument("--serve-smtp", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_smtp is not None:
        serve_smtp(args.serve_smtp, Path(args.folder))
        return 0
    print(
        "reproduce: .venv/bin/python bench/outbox_bench.py "
        f"--registrants {args.registrants} --registrations {args.registrations} "
        f"--connections {args.connections} --core {args.core} --smtp-core {args.smtp_core}"
        + (" --trace" if args.trace else "")
    )
    os.sched_setaffinity(0, {args.core})
    folder = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    port = free_port()
    child = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(args.smtp_core),
            sys.executable,
            __file__,
            "--serve-smtp",
            str(port),
            "--folder",
            str(folder),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    if child.stdout.readline().strip() != "ready":
        print("the SMTP server did not start")
        return 1
    arrivals: dict[str, float] = {}

    import threading

    def read_arrivals() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            at, message_id = line.split()
            arrivals[message_id] = float(at)

    threading.Thread(target=read_arrivals, daemon=True).start()
    # The child's files: the same certificate, to trust it.
    smtp = SmtpServer.__new__(SmtpServer)
    smtp.port, smtp.cert = port, folder / "smtp-cert.pem"
    print(f"callbridge on core {args.core}, aiosmtpd (STARTTLS, AUTH) on core {args.smtp_core}")
    try:
        if args.registrants:
            plan_and_send(args, folder, smtp)
        if args.registrations:
            registration_latency(args, folder, smtp, arrivals, str(args.core))
    finally:
        child.stdin.close()
        child.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
