"""``python -m callbridge.mail --db URL --smtp URL``: the outbox's sender as a process of its own.

``serve --smtp`` runs the sender inside the web app; this runs one beside
it, or on another host sharing the database (claims keep two senders off
one row). It sends what is enqueued and plans nothing. SIGTERM or SIGINT
stops it after the message in hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

from callbridge.mail.core import LEASE
from callbridge.mail.smtp import SmtpConfig, SmtpSender
from callbridge.mail.worker import BATCH, MailWorker
from callbridge.store.db import Database
from callbridge.store.outbox import Outbox


async def _run(args: argparse.Namespace) -> None:
    database = Database(args.db)
    database.upgrade()
    config = SmtpConfig.parse(args.smtp, Path(args.smtp_ca) if args.smtp_ca else None)
    worker = MailWorker(
        Outbox(database),
        [SmtpSender(config) for _ in range(args.connections)],
        batch=args.batch,
        poll=args.poll,
        lease=timedelta(seconds=args.lease),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    logging.getLogger(__name__).info("sending the outbox through %s", config)
    try:
        await worker.run()
    finally:
        database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m callbridge.mail", description=__doc__)
    parser.add_argument("--db", required=True, help="the database URL")
    parser.add_argument("--smtp", required=True, help="smtp://…, smtps://… or smtp+plain://…")
    parser.add_argument("--smtp-ca", default=None, help="a CA file to trust as well")
    parser.add_argument("--batch", type=int, default=BATCH, help="rows claimed at once")
    parser.add_argument("--connections", type=int, default=1, help="SMTP connections at once")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks")
    parser.add_argument(
        "--lease",
        type=float,
        default=LEASE.total_seconds(),
        help="seconds a claimed row is held before another sender may take it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
