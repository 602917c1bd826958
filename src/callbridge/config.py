"""Settings for one callbridge server, from the command line and the environment."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.store import layout
from callbridge.store.db import default_url
from callbridge.store.files import private_dir, write_atomic

LOOPBACK_TRUNKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _secret_key(data_dir: Path) -> str:
    """The key that signs session cookies: from the environment, else kept in data_dir.

    Keeping it on disk means a restart does not log every operator out.
    """
    if key := os.environ.get("CALLBRIDGE_SECRET_KEY"):
        return key
    path = layout.secret_key(data_dir)
    if path.exists():
        return path.read_text().strip()
    private_dir(data_dir)
    key = secrets.token_urlsafe(48)
    # Whole or absent: a key file cut short by a crash would sign with a shorter key.
    write_atomic(path, key.encode())
    return key


@dataclass
class Settings:
    """Everything a server needs to start; defaults suit one machine on loopback."""

    db_url: str = field(default_factory=default_url)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    public_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("var")
    trunk_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK_TRUNKS
    # Seconds without RTP after which a leg is taken to be gone.
    media_timeout: float = 30.0
    answer_delay: float = 0.25
    max_passcode_failures: int = 6
    # Guessing budgets (ivr/guard.py): wrong codes at once, then seconds each;
    # per dialled number and per trunk network, over all callers.
    guess_budget: tuple[int, float] = (100, 120.0)
    trunk_guess_budget: tuple[int, float] = (300, 10.0)
    # Behind a NAT (BridgeConfig, sip.advertise): the SIP host and port and the
    # media address that peers outside local_networks are told.
    sip_advertise: str | None = None
    sip_advertise_port: int | None = None
    media_advertise: str | None = None
    local_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Calls from these networks have their keys listened for as tones (rtp.inband).
    inband_dtmf_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # How a frame goes to many listeners (BridgeConfig.media_sender).
    media_sender: str = "auto"
    # SIP over TLS (``serve --sip-tls-port/-cert/-key``, ``--sip-tls-ca`` for mutual TLS).
    sip_tls_port: int | None = None
    sip_tls_cert: Path | None = None
    sip_tls_key: Path | None = None
    sip_tls_ca: Path | None = None
    # SRTP policy for callers' media: "off", "offered", "required".
    srtp: str = "off"
    # Per trunk network: (network, policy), the most specific wins over ``srtp``.
    srtp_trunks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = ()
    # How the media plane is scheduled: "realtime", "nice" or "normal" (server.py).
    media_priority: str = "realtime"
    # Live captions on the webcast and the console (a caption worker per live call).
    live_captions: bool = True
    # The transcript of each recorded call, made after it ends (``callbridge
    # transcribe ID`` makes it on demand where this is off).
    transcripts: bool = True
    # The session cookie gets Secure (HTTPS only), and responses get HSTS.
    secure_cookies: bool = False
    # Seconds a failed login waits before answering, so guessing is slow; the
    # login throttle (web/throttle.py) refuses repeated failures outright.
    login_failure_delay: float = 1.0
    # argon2 checks at once (19 MiB each), and how many more may wait before
    # a login is answered 503 at once.
    password_checks: int = 2
    password_check_queue: int = 8
    secret_key: str = ""
    # Addresses of the cache tier in front (callbridge cache): their
    # X-Forwarded-For names the real client, which the login throttle and the
    # audit need. Nobody else's is believed.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # serve --cache: the Unix socket the origin's own cache reaches it on
    # (web.forwarded: its X-Forwarded-For is believed), and the group that
    # may open it (Varnish's, when run as root; None: the owner only).
    cache_socket: Path | None = None
    cache_socket_group: int | None = None
    # A cascade's node (callbridge.cascade): "standalone" (no cascade), "origin" or "edge",
    # and its name on the bus (default: hostname-port).
    role: str = "standalone"
    node_id: str = ""
    # A cascade node's bus key (cascade.seal): its path only. The media plane
    # reads it; the web app, forked with these settings, never holds the key.
    bus_key_file: Path | None = None
    # On a cascade's origin: each edge's node id and the host its mix is sent to.
    cascade_edges: tuple[tuple[str, str], ...] = ()
    # An origin started as the hot standby (serve --standby): see cascade.lease.
    standby: bool = False
    # Email (callbridge.mail): the relay's URL (smtp://, smtps://), the From address, and a
    # CA file to trust for the relay besides the system's. No URL: nothing is sent.
    smtp_url: str | None = None
    smtp_from: str | None = None
    smtp_ca_file: Path | None = None
    # serve --alert-email: where the operator's alerts go (mail.alerts: guessing, a node
    # down or back); None: no alerts by email.
    alert_email: str | None = None
    # serve --metrics-listen: where /metrics and /healthz are served (web.metrics),
    # apart from the web app's port, which the cache tier passes to the public.
    metrics_listen: tuple[str, int] | None = None
    # The carriers' trunks (bridge.trunks): its path only. The media plane reads it;
    # the web app never holds the trunks' credentials.
    trunks_file: Path | None = None
    # Call me's country codes (``serve --call-me-countries``); empty: each event's own.
    call_me_countries: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = _secret_key(self.data_dir)
