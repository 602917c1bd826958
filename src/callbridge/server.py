"""``callbridge serve``: the web app and the telephony side in one event loop.

uvloop runs the loop: the default asyncio loop reads one datagram per
readiness event, which an RTP receive path cannot afford (see FACTS.md).
"""

from __future__ import annotations

import functools
import gc
import logging
import resource
import sys

import uvicorn
import uvloop

from callbridge.bridge.service import Bridge, BridgeConfig
from callbridge.config import Settings
from callbridge.ivr.guard import GuardRules
from callbridge.replay import library
from callbridge.store.db import Database
from callbridge.web.app import create_app

log = logging.getLogger(__name__)


async def run(settings: Settings) -> None:
    """Serve until cancelled or until uvicorn stops on a signal."""
    database = Database(settings.db_url)
    app = create_app(settings, database)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        lifespan="on",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    bridge = Bridge(
        BridgeConfig(
            sip_host=settings.sip_host,
            sip_port=settings.sip_port,
            rtp_port_min=settings.rtp_port_min,
            rtp_port_max=settings.rtp_port_max,
            trunk_networks=settings.trunk_networks,
            media_timeout=settings.media_timeout,
            answer_delay=settings.answer_delay,
            media_sender=settings.media_sender,
            guard=GuardRules(max_failures=settings.max_passcode_failures),
            recordings=settings.data_dir / "recordings",
            webcasts=settings.data_dir / "webcast",
            transcribe_command=functools.partial(
                library.transcribe_command, settings.db_url, settings.data_dir
            ),
        ),
        app.state.events,
        app.state.call_log,
    )
    await bridge.start()
    app.state.bridge = bridge
    # What start-up built lives as long as the process: kept out of the
    # collector's full passes, which otherwise walk it all and stall the
    # loop (45-140 ms seen during a burst of joins).
    gc.collect()
    gc.freeze()
    log.info("web on http://%s:%d", settings.http_host, settings.http_port)
    try:
        await server.serve()
    finally:
        await bridge.stop()
        database.dispose()


# Per call: its RTP socket; beside them the web's connections, recordings, the database.
_FILES_PER_CALL = 1
_FILES_BESIDE_CALLS = 1024


def raise_file_limit(calls: int) -> int:
    """Let the process open a socket per call: the soft limit up to the hard one.

    A common soft limit is 1,024 open files, which a call with a thousand
    listeners would exhaust (each leg has its own RTP socket). Returns the
    limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = calls * _FILES_PER_CALL + _FILES_BESIDE_CALLS
    target = wanted if hard == resource.RLIM_INFINITY else min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        log.warning(
            "open files are limited to %d: fewer than %d calls at once will fit "
            "(raise the hard limit, e.g. LimitNOFILE= in a systemd unit)",
            soft,
            calls,
        )
    return soft


def serve(settings: Settings) -> None:
    raise_file_limit(BridgeConfig.max_calls)
    # A thread busy in Python (a database query, the webcast's packager) keeps
    # the GIL for up to this long each time the loop lets it go (a send, a
    # read): 5 ms by default, a quarter of a media tick.
    sys.setswitchinterval(0.001)
    uvloop.run(run(settings))
