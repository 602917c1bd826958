"""``callbridge serve``: the media plane and the web app, each in a process of its own.

The media plane — SIP, RTP, the 20 ms mixer clocks, the recorder and the
webcast packager — owns one event loop in one process, and the web app
(uvicorn) another: a burst of logins (argon2), a thousand webcast requests a
second or a slow database query in the web process cannot delay a media tick.
They talk over a Unix socket (``control.server``, ``control.client``); the
database is shared as before.

The process ``serve`` starts is a small supervisor: it upgrades the schema,
starts the media plane and the web app side by side (the web app listens once
it reaches the media plane, whose SIP socket is then bound); a child that
dies is started again, and a signal stops both, the web app first.
Children die with the supervisor (a SIGKILL to it is a crash for them too:
recordings survive it and are assembled on the next start).

The supervisor imports both children's code once and forks them: a child
starts with it loaded (shared, copy-on-write), so a start costs one import
of each side instead of a fresh interpreter per child, and a media plane
that dies is back within a second rather than after the seconds its imports
take on a busy host. The supervisor starts no thread and opens no connection
before it forks (a fork copies only the forking thread).

uvloop runs both loops: the default asyncio loop reads one datagram per
readiness event, which an RTP receive path cannot afford (see FACTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callbridge.children import die_with_parent
from callbridge.config import Settings
from callbridge.media import priority
from callbridge.store import layout
from callbridge.store.db import Database
from callbridge.store.files import private_dir
from callbridge.store.pins import pin_key

if TYPE_CHECKING:
    from callbridge.edge.varnish import CacheNode

# Each child's entry point imports its own side (the bridge and numpy/PyAV, or
# uvicorn and the web app); ``_preload`` imports both in the supervisor first,
# so that a forked child finds them loaded.

log = logging.getLogger(__name__)

# A child that dies this many times within RESTART_WINDOW seconds is not started again.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
MEDIA_READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


# -- the media plane's process ---------------------------------------------------------------


def run_media_plane(settings: Settings, log_level: int) -> None:
    """Entry point of the media plane's process (SIP, RTP, mixer, recorder, packager)."""
    import uvloop

    from callbridge.bridge.service import BridgeConfig

    _child_setup(log_level)
    priority.raise_media_priority(settings.media_priority)
    raise_file_limit(BridgeConfig.max_calls)
    # A thread busy in Python (a database query, the webcast's packager) keeps
    # the GIL for up to this long each time the loop lets it go (a send, a
    # read): 5 ms by default, a quarter of a media tick.
    sys.setswitchinterval(0.001)
    uvloop.run(_media_plane(settings))


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The SIP TLS port's context (``bridge.sip_transport.server_context``), if it is served."""
    if settings.sip_tls_port is None or settings.sip_tls_cert is None:
        return None
    from callbridge.bridge.sip_transport import server_context

    assert settings.sip_tls_key is not None, "the CLI checks the key is given"
    ca = str(settings.sip_tls_ca) if settings.sip_tls_ca is not None else None
    return server_context(str(settings.sip_tls_cert), str(settings.sip_tls_key), ca)


async def _media_plane(settings: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from callbridge.bridge.callme import CallMeRules
    from callbridge.bridge.config import SrtpRules
    from callbridge.bridge.service import Bridge, BridgeConfig
    from callbridge.bridge.trunks import load as load_trunks
    from callbridge.control.server import ControlServer
    from callbridge.ivr.guard import Budget, GuardRules
    from callbridge.replay import library
    from callbridge.sip.sdp import SrtpPolicy
    from callbridge.store.calllog import CallLog
    from callbridge.store.events import EventStore
    from callbridge.webcast.captions import worker_command

    # asyncio.to_thread's workers (assembling, packaging) at the media plane's nice too.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(thread_name_prefix="media-worker", initializer=priority.as_media_worker)
    )
    database = Database(settings.db_url)
    bridge_class: Callable[[BridgeConfig, EventStore, CallLog], Bridge] = Bridge
    if settings.role != "standalone":
        from callbridge.cascade.node import NodeConfig, cascade_bridge
        from callbridge.cascade.seal import read_key

        # Read here, in the media plane only: the web app has the database's
        # credentials, and whoever has those must not be able to seal.
        assert settings.bus_key_file is not None, "a cascade node has a bus key (cli)"
        node = NodeConfig(
            settings.node_id,
            settings.role,
            settings.db_url,
            bus_key=read_key(settings.bus_key_file),
            edges=dict(settings.cascade_edges),
            standby=settings.standby,
        )
        bridge_class = functools.partial(cascade_bridge, node=node)
    bridge = bridge_class(
        BridgeConfig(
            sip_host=settings.sip_host,
            sip_port=settings.sip_port,
            rtp_port_min=settings.rtp_port_min,
            rtp_port_max=settings.rtp_port_max,
            trunk_networks=settings.trunk_networks,
            media_timeout=settings.media_timeout,
            answer_delay=settings.answer_delay,
            media_sender=settings.media_sender,
            sip_tls_port=settings.sip_tls_port,
            sip_tls=_tls_context(settings),
            srtp=SrtpRules(
                SrtpPolicy(settings.srtp),
                tuple((net, SrtpPolicy(p)) for net, p in settings.srtp_trunks),
            ),
            pin_key=pin_key(settings.secret_key),
            sip_advertise=settings.sip_advertise,
            sip_advertise_port=settings.sip_advertise_port,
            media_advertise=settings.media_advertise,
            local_networks=settings.local_networks,
            inband_dtmf_networks=settings.inband_dtmf_networks,
            guard=GuardRules(
                max_failures=settings.max_passcode_failures,
                number_budget=Budget(*settings.guess_budget),
                trunk_budget=Budget(*settings.trunk_guess_budget),
            ),
            recordings=layout.recordings(settings.data_dir),
            webcasts=layout.webcasts(settings.data_dir),
            journal=layout.journal(settings.data_dir),
            transcribe_command=functools.partial(
                library.transcribe_command, settings.db_url, settings.data_dir
            )
            if settings.transcripts
            else None,
            caption_command=worker_command if settings.live_captions else None,
            trunks=load_trunks(settings.trunks_file) if settings.trunks_file else None,
            call_me=CallMeRules(countries=settings.call_me_countries),
        ),
        EventStore(database),
        CallLog(database),
    )
    bridge.node_id, bridge.node_role = settings.node_id, settings.role
    control = ControlServer(bridge, layout.control_socket(settings.data_dir))
    bridge.on_playlist = control.playlist_updated
    bridge.on_changed = control.view_changed
    stop = _stop_on_signals()
    await bridge.start()
    try:
        await control.start()
        # What start-up built lives as long as the process: kept out of the
        # collector's full passes, which otherwise walk it all and stall the
        # loop (45-140 ms seen during a burst of joins).
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("media plane stopping")
        bridge.draining = True
    finally:
        await control.close()
        await bridge.stop()
        database.dispose()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


# -- the web app's process -------------------------------------------------------------------


def run_web(settings: Settings, log_level: int) -> None:
    """Entry point of the web app's process (API, pages, console, webcast files)."""
    import uvloop

    _child_setup(log_level)
    priority.lower_web_priority(settings.media_priority)
    uvloop.run(_web(settings))


async def _web(settings: Settings) -> None:
    import uvicorn

    from callbridge.control.client import RemoteBridge
    from callbridge.web.app import create_app

    database = Database(settings.db_url)
    app = create_app(settings, database)
    remote = RemoteBridge(layout.control_socket(settings.data_dir))
    app.state.bridge = remote
    link = asyncio.create_task(remote.run(), name="control-link")
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        lifespan="on",
        # Who the client is behind a cache is the app's (web.forwarded): only
        # its own cache's socket and --trusted-proxy addresses are believed.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    metrics = _metrics_server(settings, app) if settings.metrics_listen else None
    sockets = None
    if settings.cache_socket is not None:
        sockets = [
            config.bind_socket(),
            cache_listener(settings.cache_socket, settings.cache_socket_group, config.backlog),
        ]
    gc.collect()
    gc.freeze()
    # The web app answers once the bridge can: a page that offers dial-in is
    # not up while the SIP side is not.
    if not await remote.wait_connected(MEDIA_READY_TIMEOUT):
        log.warning("the media plane is not reachable yet: serving without it")
    log.info("web on http://%s:%d", settings.http_host, settings.http_port)
    metrics_task = asyncio.create_task(metrics.serve()) if metrics is not None else None
    try:
        await server.serve(sockets=sockets)
    finally:
        if metrics is not None and metrics_task is not None:
            metrics.should_exit = True
            with contextlib.suppress(Exception):
                await metrics_task
        await remote.close()
        link.cancel()
        database.dispose()


def _metrics_server(settings: Settings, app: Any) -> Any:
    """``serve --metrics-listen``: /metrics and /healthz on a port of their own (``web.metrics``).

    A second uvicorn server on the web process's loop; the main one owns the signals.
    """
    import uvicorn

    from callbridge.web.metrics import metrics_app

    class InnerServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    assert settings.metrics_listen is not None
    host, port = settings.metrics_listen
    # Logging is the main server's: a Config's log_level (or log_config) sets uvicorn's
    # loggers process-wide, and "warning" here silenced the web port's access log.
    config = uvicorn.Config(
        metrics_app(app.state),
        host=host,
        port=port,
        log_config=None,
        log_level=None,
        lifespan="off",
    )
    log.info("metrics on http://%s:%d/metrics", host, port)
    return InnerServer(config)


def cache_listener(path: Path, group: int | None, backlog: int) -> socket.socket:
    """The Unix socket the origin's own cache connects to, openable by it alone.

    Its folder is the owner's (0700), or also ``group``'s, Varnish's worker's
    (0750), and so is the socket (0600 or 0660): no other local user can
    connect, so nobody else's ``X-Forwarded-For`` arrives on it.
    """
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder_mode, socket_mode = (0o700, 0o600) if group is None else (0o750, 0o660)
    if group is not None:
        os.chown(folder, -1, group)
    folder.chmod(folder_mode)
    path.unlink(missing_ok=True)  # left by a web process that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    if group is not None:
        os.chown(path, -1, group)
    path.chmod(socket_mode)
    listener.listen(backlog)
    listener.set_inheritable(True)
    return listener


# -- the cache node's process --------------------------------------------------------------


def run_cache(node: CacheNode, log_level: int) -> None:
    """Entry point of the cache node's process: Varnish (and hitch) in front of the web app."""
    from callbridge.edge.node import run_cache_node

    _child_setup(log_level)
    sys.exit(run_cache_node(node))


# -- the supervisor --------------------------------------------------------------------------


class _Child:
    """One supervised process: how to start it, and when it last died."""

    def __init__(self, name: str, start: Callable[[], BaseProcess]) -> None:
        self.name = name
        self._start = start
        self.process: BaseProcess | None = None
        self.deaths: deque[float] = deque(maxlen=MAX_RESTARTS)

    def start(self) -> BaseProcess:
        self.process = self._start()
        log.info("the %s process is pid %s", self.name, self.process.pid)
        return self.process

    def may_restart(self, now: float) -> bool:
        self.deaths.append(now)
        return len(self.deaths) < MAX_RESTARTS or now - self.deaths[0] > RESTART_WINDOW


def serve(settings: Settings, cache: CacheNode | None = None) -> None:
    """Run the media plane and the web app until a signal; returns when both have stopped.

    With ``cache``, a cache node (``edge.node``) runs in front of the web app
    as a third child, started last and stopped first.
    """
    # The data folder (secret key, control socket, recordings) is the server's
    # user's alone, however it came to exist.
    private_dir(settings.data_dir)
    database = Database(settings.db_url)
    database.upgrade()
    database.dispose()
    _preload(settings)
    context = multiprocessing.get_context("fork")
    level = logging.getLogger().getEffectiveLevel()
    supervisor = os.getpid()

    def start_media() -> BaseProcess:
        process = context.Process(
            target=_child, args=(supervisor, run_media_plane, settings, level), name="media"
        )
        process.start()
        return process

    def start_web() -> BaseProcess:
        process = context.Process(
            target=_child, args=(supervisor, run_web, settings, level), name="web"
        )
        process.start()
        return process

    children = [_Child("media", start_media), _Child("web", start_web)]
    if cache is not None:

        def start_cache() -> BaseProcess:
            process = context.Process(
                target=_child, args=(supervisor, run_cache, cache, level), name="cache"
            )
            process.start()
            return process

        children.append(_Child("cache", start_cache))
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        while not stopping:
            sentinels = [c.process.sentinel for c in children if c.process is not None]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for child in children:
                process = child.process
                if stopping or process is None or process.is_alive():
                    continue
                log.error("the %s process exited (%s)", child.name, process.exitcode)
                if not child.may_restart(time.monotonic()):
                    log.error("the %s process keeps dying: stopping", child.name)
                    stopping = True
                    break
                log.info("starting the %s process again", child.name)
                child.start()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # The web app first: nothing new reaches the bridge while it ends its calls.
        for child in reversed(children):
            _stop(child.process)


def _preload(settings: Settings) -> None:
    """Import what the children run, before forking them (see the module's docstring).

    Importing starts no thread and opens nothing: the modules build classes,
    templates and tables only.
    """
    import uvicorn  # noqa: F401
    import uvloop  # noqa: F401

    import callbridge.bridge.service
    import callbridge.control.client
    import callbridge.control.server
    import callbridge.ivr.guard
    import callbridge.replay.library
    import callbridge.store.calllog
    import callbridge.web.app
    import callbridge.webcast.captions

    if settings.role != "standalone":
        import callbridge.cascade.node  # noqa: F401
    # Kept out of the collector's passes in the children too, which then
    # neither walk it (a stall of the media clock) nor copy its pages.
    gc.collect()
    gc.freeze()


def _stop(process: BaseProcess | None) -> None:
    if process is None or not process.is_alive():
        return
    process.terminate()
    process.join(STOP_TIMEOUT)
    if process.is_alive():
        log.error("the %s process did not stop in %.0f s: killing it", process.name, STOP_TIMEOUT)
        process.kill()
        process.join()


def _child(supervisor: int, target: Callable[..., None], *args: Any) -> None:
    """Run ``target`` in a child that dies with its supervisor."""
    # Forked with the supervisor's handlers, which only note a stop: a child
    # stops on a signal until its own loop installs handlers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _die_with_parent(supervisor)
    target(*args)


def _die_with_parent(supervisor: int) -> None:
    # SIGKILL, not SIGTERM: a supervisor that vanished is a crash, and a child
    # that went on would hold the SIP and HTTP ports its replacement needs.
    die_with_parent(signal.SIGKILL)
    if os.getppid() != supervisor:  # the supervisor died before prctl took effect
        os._exit(1)


def _child_setup(log_level: int) -> None:
    # force: the handler forked from the supervisor does not name the process.
    logging.basicConfig(level=log_level, format=LOG_FORMAT, force=True)


# Per call: its RTP socket and its RTCP one (port + 1, unless rtcp-mux was agreed);
# beside them the web's connections, recordings, the database.
_FILES_PER_CALL = 2
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
